"""LeRobot v3.0 datasets in and out: ``import_lerobot`` (folder -> HDF5 store), ``export_lerobot`` (the reverse).

Needs the ``lerobot`` extra (pyarrow for parquet, PyAV for video): ``pip install 'automimic[lerobot]'``.
"""

from automimic.data.lerobot.layout import LeRobotError, feature_name, obs_key
from automimic.data.lerobot.reader import LeRobotReader, import_lerobot
from automimic.data.lerobot.writer import export_lerobot

__all__ = ["LeRobotError", "LeRobotReader", "export_lerobot", "feature_name", "import_lerobot", "obs_key"]
