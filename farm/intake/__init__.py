# SPDX-License-Identifier: Apache-2.0
"""Intake: a patch series from mail (mbox, maildir, format-patch folder) parsed, checked
and applied with git am in a worktree. farm.scheduler.submit stores what it applied."""
