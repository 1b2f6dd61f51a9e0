"""The API's resources, one package per context: `controllers` (routes) and `schemas`
(request and response shapes)."""
