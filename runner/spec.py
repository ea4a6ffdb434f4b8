"""The sweep spec lives in :mod:`a2c_core.spec` (analysis reads sweep files too, and must
not import the runner); this name is kept for existing imports."""

from a2c_core.spec import (  # noqa: F401
    DEFAULT_CHECKPOINT_EVERY_S,
    MAX_SEED,
    SWINGUP_IDS,
    Execution,
    RunSpec,
    SpecError,
    Sweep,
    check_compatible,
    check_name,
    experiment_key,
    load_spec,
    run_id,
)
