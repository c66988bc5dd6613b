"""Static checks of the Kubernetes side (``k8s/``), with no cluster.

- :mod:`.manifests`: render kustomizations with ``kubectl kustomize``, load YAML,
  name objects in messages.
- :mod:`.schemas`: strict schema validation (core kinds with
  ``kubernetes-validate``, custom resources against JSON schemas from
  ``CRD_SCHEMA_LOCATION``).
- :mod:`.inventory`: everything the cluster will hold: the rendered objects plus
  what the bootstrap provides (Istio's ingress gateway, the Secrets).
- :mod:`.workloads` (pod templates inside workload objects), :mod:`.hostnames`
  (in-cluster names and addresses to Services) and :mod:`.apps` (asks the
  applications themselves for their settings and routes): helpers of the checks.
- the cross-check modules (:mod:`.services`, :mod:`.istio`, :mod:`.references`,
  :mod:`.images`, :mod:`.pods`, :mod:`.shutdown`, :mod:`.served`): each check
  takes the inventory and returns messages naming the object at fault.
- the list of checks and one call that runs them all is :mod:`repocheck.suite`, above this package.
"""
