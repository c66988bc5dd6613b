"""The repository as data, read the same way by the local stack, the static checks and the
test harness: the Istio resources (:mod:`repomodel.istio`) and the uv workspace
(:mod:`repomodel.workspace`)."""
