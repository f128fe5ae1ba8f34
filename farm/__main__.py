# SPDX-License-Identifier: Apache-2.0
from farm.cli import main

main()
