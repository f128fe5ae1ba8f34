# SPDX-License-Identifier: Apache-2.0
"""Reports of a bisection: the reply to the guilty patch's email, Markdown and HTML with
plots, from a ReportInput (farm.scheduler.report_input builds it from the store)."""
