"""The local gateway: an HTTP reverse proxy routed by the Istio VirtualServices in `k8s/istio/`.

Pure routing model (no I/O): :mod:`.routing`, :mod:`.retry`,
:mod:`.outlier`, :mod:`.istio` (YAML -> :class:`~.routing.RouteTable`). The proxy
I/O lives in :mod:`.proxy`; settings in :mod:`.settings`.
"""
