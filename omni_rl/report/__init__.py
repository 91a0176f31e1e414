"""``omni-rl report``: a static HTML page of a run (curves, and rollouts with their media), with no
network requests: styles, script and charts are inline, media are copies written beside the page."""

from omni_rl.report.build import REPORT_FILE, ReportOptions, ReportResult, build_report
from omni_rl.report.data import RunFolderError
from omni_rl.report.media import MediaLimits

__all__ = ["REPORT_FILE", "MediaLimits", "ReportOptions", "ReportResult", "RunFolderError", "build_report"]
