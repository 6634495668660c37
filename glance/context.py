"""The request context every layer receives."""

from oslo_context import context


class RequestContext(context.RequestContext):
    """oslo.context's context plus what image ownership needs."""

    def __init__(self, service_catalog=None, **kwargs):
        super().__init__(**kwargs)
        self.service_catalog = service_catalog

    @property
    def owner(self):
        """Images created in this context belong to its project."""
        return self.project_id
