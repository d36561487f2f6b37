"""Ray Serve deployments: one file each."""
