# SPDX-License-Identifier: Apache-2.0
from soakstack import soak_config, soak_store, ssh_host, stack  # noqa: F401
