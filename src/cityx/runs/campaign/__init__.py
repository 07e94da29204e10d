"""Red-team campaigns: a grid of world attacks on a controller, run in parallel, resumable.

A *campaign plan* (:mod:`.plan`) is a grid: scenario x attack x intensity x
seed, against one controller (a controller plugin's id or a controller
submission folder). Each point of the grid is a *cell*, one simulation;
every (scenario, seed) also gets a *clean* cell without the attack, so each
attacked cell is *paired* with the unattacked run of the same seed.

- :mod:`.plan`: the plan, its cells and thresholds, and its TOML form;
- :mod:`.run`: running the cells on the execution engine
  (:mod:`cityx.worlds.engine`), resumably, and writing ``campaign.json``;
- :mod:`.records`: the typed records of cells, groups and detection, with
  the exact JSON of ``cell.json`` and ``campaign.json``;
- :mod:`.summary`: pure functions from cell records to groups and findings;
- :mod:`.check`: the trial check ``redteam.campaign``.
"""

from .baselines import BASELINES_DIR, Compared, check_baselines, run_baselines
from .check import CHECK_DEFAULTS, RedteamCampaign
from .plan import CLEAN, CampaignPlan, Cell, Thresholds
from .records import (
    AttackCost,
    AttackedCell,
    CampaignResult,
    CellRecord,
    CleanCell,
    Detection,
    DetectionRates,
    FailedCell,
    Group,
    PairedDelta,
)
from .run import CAMPAIGN_FILE, CELL_FILE, run_campaign, run_cell
from .summary import detection, reproduce_file, summarise

__all__ = [
    "BASELINES_DIR",
    "CAMPAIGN_FILE",
    "CELL_FILE",
    "CHECK_DEFAULTS",
    "CLEAN",
    "AttackCost",
    "AttackedCell",
    "CampaignPlan",
    "CampaignResult",
    "Cell",
    "CellRecord",
    "CleanCell",
    "Compared",
    "Detection",
    "DetectionRates",
    "FailedCell",
    "Group",
    "PairedDelta",
    "RedteamCampaign",
    "Thresholds",
    "check_baselines",
    "detection",
    "reproduce_file",
    "run_baselines",
    "run_campaign",
    "run_cell",
    "summarise",
]
