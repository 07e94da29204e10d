"""The web console: every role's work in a browser, rendered by the server.

Pages are Jinja2 templates over the API's own route functions, under
``/console`` (and ``/login``); reading works without JavaScript, and the
vendored htmx 2 (with its SSE extension) is served from the package, never
from a CDN (see static/PROVENANCE.md). Authorization is the server's one
policy: each page names the API route whose rule it needs
(:class:`.base.Needs`). Modules: :mod:`.base` (templates, the page guard),
:mod:`.session` (cookie, CSRF, once-only forms), :mod:`.pages` (login, home),
:mod:`.vendor`, :mod:`.trials`, :mod:`.records`, :mod:`.runs` (with :mod:`.commands`
and :mod:`.replay`) and :mod:`.evidence` (each area's pages).
See docs/console.md.
"""

from __future__ import annotations

from . import commands, evidence, jobs, pages, records, replay, runs, trials, vendor
from .base import router

PAGE_MODULES = (pages, vendor, trials, records, jobs, runs, commands, replay, evidence)

__all__ = ["PAGE_MODULES", "router"]
