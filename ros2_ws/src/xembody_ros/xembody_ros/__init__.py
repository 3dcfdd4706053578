"""xembody_ros: console scripts for the xembody nodes (their code is xembody.real.ros)."""
