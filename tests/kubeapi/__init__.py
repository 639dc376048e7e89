"""A strict test API server: kube-apiserver's rules (schemas, CEL, RBAC, names, quantities,
built-in kinds, garbage collection, watches) in front of an in-memory store, for tests that
must fail where a real cluster would. ``server.KubeAPIServer`` is the server,
``fixtures`` the pytest fixtures; docs/operator.md "Testing" lists what it enforces."""
