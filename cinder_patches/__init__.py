"""Extensions of the ``cinder`` package; see README.rst.

``cinder_patches.rbd.RBDCloneDriver``: Cinder's RBD driver uploading
volumes to Glance RBD stores of the same cluster by copy-on-write clone
(``enable_clone_optimization``).
"""
