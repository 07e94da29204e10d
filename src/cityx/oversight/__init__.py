"""Human oversight of the city's traffic AI (EU AI Act Art. 14).

Operating modes per intersection through the safety envelope, operator
commands, an independent conflict monitor, a signed decision log, alerts
against automation bias, and oversight drills. See docs/oversight.md.
"""

from .monitor import ConflictMonitor, MonitorReport, References, Violation

__all__ = ["ConflictMonitor", "MonitorReport", "References", "Violation"]
