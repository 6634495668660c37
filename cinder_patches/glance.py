"""The Glance calls of the clone path, made with Cinder's own client.

Both go through ``cinder.image.glance.GlanceClientWrapper`` with
``privileged_user=True``: the keystoneauth plugin of cinder.conf's
``[glance]`` section (Cinder's service user, which Glance's default
policies require for the stores detail and for adding an ``rbd://``
location) wrapped with a service token when ``[service_user]`` asks for
one. Kept in one class so that tests and other deployments can replace
the lookup.
"""

import glanceclient.exc
from cinder.image import glance as cinder_glance


class GlanceLocations:

    def stores(self, context):
        """Glance's ``GET /v2/info/stores/detail`` entries."""
        body = cinder_glance.GlanceClientWrapper().call(
            context, 'get_stores_info_detail', privileged_user=True)
        return body.get('stores') or []

    def add_location(self, context, image_id, url, validation_data):
        """Register ``url`` as the location of the queued image.

        Returns True when Glance finishes the work in the background (the
        ``POST /v2/images/{id}/locations`` API of v2.17, answered 202),
        False when the image is active on return (the JSON-patch way, for
        a Glance whose ``/versions`` lacks v2.17). ``validation_data()``
        is called only for the JSON-patch way: Glance can't fill the hashes
        in later there, so they go with the location.
        """
        client = cinder_glance.GlanceClientWrapper()
        try:
            # glanceclient checks /versions for v2.17 before sending.
            client.call(context, 'add_image_location', image_id, url, {},
                        privileged_user=True)
            return True
        except glanceclient.exc.HTTPNotImplemented:
            pass
        client.call(context, 'add_location', image_id, url, {},
                    validation_data(), privileged_user=True)
        return False
