# Tempest's subnets client sleeps ten seconds before every subnet delete
# (tempest/lib/services/network/subnets_client.py), for Neutron's ports
# that are still being torn down after their delete has answered.
# trustack deletes a port before it answers, so the wait tests nothing
# here, and over the network tests' two hundred subnet deletes it would be
# most of their time. The e2e tests' tempest helper puts this directory on
# PYTHONPATH, where Python imports it at the start of every process.
import types

try:
    from tempest.lib.services.network import subnets_client
except ImportError:
    pass
else:
    subnets_client.time = types.SimpleNamespace(sleep=lambda seconds: None)
