"""Test and benchmark harness for the workspace; a dev-only member, shipped in no image.

* :mod:`testkit.process` - a console script as a real process on a free loopback port;
* :mod:`testkit.testagent` - the Datadog APM test agent as a real process;
* :mod:`testkit.books`, :mod:`testkit.tts_backend`, :mod:`testkit.fronts` - each
  service started for tests;
* :mod:`testkit.devstack` - Istio YAML on disk, small real HTTP upstreams, the gateway in
  the test's event loop, and ``stack up`` as a subprocess;
* :mod:`testkit.k8s` - the rendered manifests and broken copies for the k8s checks.
"""
