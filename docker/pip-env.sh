# Sourced by docker/Dockerfile's pip steps: use the build secrets when they were given.
# pip_conf -> PIP_CONFIG_FILE, ca_bundle -> PIP_CERT; neither is ever copied into a layer.
if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi
if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi
