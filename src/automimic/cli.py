"""The ``automimic`` command line: it parses arguments and calls the Python API, nothing more."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Learn robot policies from a few demonstrations, then improve them in simulation.")
train_app = typer.Typer(no_args_is_help=True, help="Train a policy on demonstrations.")
data_app = typer.Typer(no_args_is_help=True, help="Inspect episode stores (HDF5); import and export LeRobot datasets.")
improve_app = typer.Typer(no_args_is_help=True, help="Self-improvement: practise in simulation, learn from it.")
app.add_typer(train_app, name="train")
app.add_typer(data_app, name="data")
app.add_typer(improve_app, name="improve")
console = Console()
if not console.is_terminal:
    # Piped into a log, rich falls back to 80 columns and would truncate table cells; logs can be wide.
    console = Console(width=160)


def _fail(message: str) -> None:
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _print_row(row: object) -> None:
    console.print(row.line(), highlight=False)


def _train(algo: str, config: Optional[Path], overrides: list[str], out: Path, **extra: object) -> object:
    """Build ``algo``'s config (defaults, YAML file, overrides) and run it into ``out`` through the registry.

    One line per progress row; any input error ends the command with a one-line message.
    """
    from automimic.algos.registry import get
    from automimic.algos.run_config import load_sized_config
    from automimic.data.store import StoreError

    try:
        algorithm = get(algo)
        cfg = load_sized_config(algorithm.config, config, [*algorithm.overrides, *overrides])
        return algorithm.run(cfg, out, True, _print_row, **extra)
    except (ValueError, StoreError, FileNotFoundError) as err:
        _fail(str(err))


#: ``--init`` and ``--finetune``, shared by every command that trains from demos.
INIT_OPTION = typer.Option(None, help="start from this pretrained policy (a run folder of automimic pretrain, "
                                      "or any policy run folder or .pt)")
FINETUNE_OPTION = typer.Option("full", help="with --init: full (every weight) or embedding (the task vectors only)")
# The options most commands share, written once so their help reads the same everywhere.
DEMOS_OPTION = typer.Option(..., help="HDF5 store with the expert demos")
OUT_OPTION = typer.Option(..., help="run folder (resumes if it exists)")
ENV_OPTION = typer.Option(None, help="env id (default: the store's)")


def _init_overrides(init: Optional[Path], finetune: str) -> list[str]:
    """The ``--init``/``--finetune`` options as config overrides (none when not given)."""
    return ([f"init={init}"] if init else []) + ([f"finetune={finetune}"] if finetune != "full" else [])


def _report(out: Path) -> Path:
    """Write run folder ``out``'s report through the registry (a one-line error if it cannot)."""
    from automimic.algos.registry import write_folder_report

    try:
        return write_folder_report(out)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))


@app.callback()
def main(backend: str = typer.Option("local", help="where rollouts run: local (in-process or --workers "
                                                   "processes) or ray (Ray actors)"),
         ray_address: Optional[str] = typer.Option(None, help="with --backend ray: 'auto' or HOST:PORT of a "
                                                              "running cluster (default: start a local one)"),
         envs_per_worker: Optional[int] = typer.Option(None, help="envs each worker steps together, one batched "
                                                                  "policy query per step (default 4)"),
         threads: Optional[int] = typer.Option(None, help="torch threads of this process (training, evaluation); "
                                                          "default $AUTOMIMIC_THREADS, else 1: more threads than "
                                                          "free cores make every job on the machine crawl; "
                                                          "rollout workers always use 1"),
         device: Optional[str] = typer.Option(None, help="where training and learner updates run: auto (CUDA if "
                                                         "available, else cpu), cpu, cuda or cuda:N; default "
                                                         "$AUTOMIMIC_DEVICE, else auto; rollouts and evaluation "
                                                         "always run on the CPU")) -> None:
    """Learn robot policies from a few demonstrations, then improve them in simulation."""
    from automimic.device import set_device
    from automimic.rollout.collector import set_backend
    from automimic.threads import configure_threads

    try:
        configure_threads(threads)
        set_device(device)
        set_backend(backend, ray_address, envs_per_worker)
    except ValueError as err:
        _fail(str(err))


@app.command()
def envs() -> None:
    """List the environment ids."""
    from automimic.envs import env_ids

    for env_id in env_ids():
        console.print(env_id, highlight=False)
    console.print("gym/<any Gymnasium id>", highlight=False)


@app.command()
def collect(env: str = typer.Option(..., help="env id, e.g. metaworld/push-v3"),
            episodes: int = typer.Option(5, min=1, help="episodes the store should hold"),
            out: Path = typer.Option(..., help="HDF5 file to append to"),
            seed: int = typer.Option(0, help="run seed (selects collection start states)"),
            workers: int = typer.Option(1, min=1, help="worker processes"),
            perturb: float = typer.Option(0.0, min=0.0, help="start-position perturbation sigma"),
            horizon: Optional[int] = typer.Option(None, min=1, help="step budget (default: the env's)"),
            keep_failures: bool = typer.Option(False, help="also store failed expert episodes"),
            camera: Optional[str] = typer.Option(None, help="also record this camera as obs '<camera>_image' "
                                                          "(plus 'proprio'), e.g. corner, top"),
            image_size: int = typer.Option(84, min=8, help="side of recorded camera frames"),
            expert: str = typer.Option("", help="record this expert instead of the env's scripted one: "
                                                "'package.module:name', a class or a function obs -> action")) -> None:
    """Record scripted-expert demonstrations (successful ones unless --keep-failures)."""
    from automimic.data.store import StoreError
    from automimic.rollout.collect import collect_demos

    try:
        store = collect_demos(env, episodes, out, seed=seed, workers=workers, perturb=perturb, horizon=horizon,
                              keep_failures=keep_failures, cameras=[camera] if camera else (), image_size=image_size,
                              expert=expert)
    except (ValueError, StoreError, RuntimeError) as err:
        _fail(str(err))
    s = store.summary()
    console.print(f"{out}: {s.episodes} episodes, {s.steps} steps, success {s.success_rate:.2f}", highlight=False)


@data_app.command("info")
def data_info(file: Path) -> None:
    """Episodes, steps, success rate, sources and shapes of an episode store."""
    from automimic.data.store import EpisodeStore, StoreError

    try:
        s = EpisodeStore(file).summary()
    except StoreError as err:
        _fail(str(err))
    table = Table(title=str(file), show_header=False)
    table.add_row("env", str(s.env_id) if s.env_id or len(s.tasks) < 2 else f"{len(s.tasks)} tasks (multi-task store)")
    if len(s.tasks) > 1:
        table.add_row("episodes per task", ", ".join(f"{k}: {v}" for k, v in s.tasks.items()))
    table.add_row("episodes", str(s.episodes))
    table.add_row("steps", str(s.steps))
    table.add_row("success rate", f"{s.success_rate:.3f} ({s.successes}/{s.episodes})")
    table.add_row("sources", ", ".join(f"{k}: {v}" for k, v in sorted(s.sources.items())) or "-")
    for key, shape in sorted(s.obs_shapes.items()):
        table.add_row(f"obs/{key}", str(shape))
    table.add_row("actions", str(s.action_shape))
    if s.masks:
        table.add_row("masks", ", ".join(f"{k}: {v}" for k, v in s.masks.items()))
    console.print(table)


@data_app.command("import")
def data_import(path: Path = typer.Argument(..., help="a local LeRobot v3.0 dataset folder (holding meta/info.json)"),
                out: Path = typer.Option(..., help="new HDF5 store to write"),
                image_size: Optional[int] = typer.Option(None, min=8, help="scale camera frames to this square "
                                                                           "side (default: native size)")) -> None:
    """Import a LeRobot v3.0 dataset: observation.* -> obs/<key>, observation.images.<cam> -> obs/<cam>_image."""
    from automimic.data.lerobot import LeRobotError, import_lerobot
    from automimic.data.store import EpisodeStore, StoreError

    try:
        count = import_lerobot(path, out, image_size)
    except (LeRobotError, StoreError) as err:
        _fail(str(err))
    s = EpisodeStore(out).summary()
    console.print(f"{out}: {count} episodes, {s.steps} steps, success {s.success_rate:.2f} (imported from {path})",
                  highlight=False)


@data_app.command("export")
def data_export(file: Path = typer.Argument(..., help="HDF5 episode store"),
                out: Path = typer.Option(..., help="new dataset folder"),
                format: str = typer.Option("lerobot", help="output format (lerobot: LeRobot v3.0)"),
                fps: Optional[int] = typer.Option(None, min=1, help="frame rate (default: the episodes' fps, else 10)"),
                task: Optional[str] = typer.Option(None, help="task string (default: each episode's task or env id)"),
                codec: str = typer.Option("libsvtav1", help="video encoder: libsvtav1 (AV1, LeRobot's default) or "
                                                            "libx264")) -> None:
    """Export an episode store as a LeRobot v3.0 dataset (parquet frames, AV1 videos, provenance per episode)."""
    from automimic.data.lerobot import LeRobotError, export_lerobot
    from automimic.data.store import StoreError

    if format != "lerobot":
        _fail(f"--format {format!r}: the only export format is 'lerobot'")
    try:
        count = export_lerobot(file, out, fps=fps, task=task, codec=codec)
    except (LeRobotError, StoreError) as err:
        _fail(str(err))
    console.print(f"{out}: {count} episodes exported from {file} (LeRobot v3.0)", highlight=False)


@train_app.command("bc")
def train_bc_cmd(data: Path = typer.Option(..., help="HDF5 episode store"),
                 out: Path = OUT_OPTION,
                 env: Optional[str] = typer.Option(None, help="env id for checks and validation (default: the "
                                                              "store's)"),
                 policy: Optional[str] = typer.Option(None, help="policy class: mlp (default), act, diffusion"),
                 config: Optional[Path] = typer.Option(None, help="YAML file of BCConfig fields"),
                 set_: list[str] = typer.Option([], "--set", help="override, e.g. --set train.steps=2000"),
                 init: Optional[Path] = INIT_OPTION,
                 finetune: str = FINETUNE_OPTION,
                 seed: int = typer.Option(0, help="seed for weights, batches and validation")) -> None:
    """Behaviour cloning into a run folder: config, checkpoints, metrics.jsonl, TensorBoard."""
    _train("bc", config, [f"data={data}", f"seed={seed}", *([f"env_id={env}"] if env else []),
                          *([f"policy={policy}"] if policy else []), *_init_overrides(init, finetune), *set_], out)
    console.print(f"trained: {out}/checkpoints/best.pt (last: {out}/checkpoints/last.pt)", highlight=False)


@app.command()
def pretrain(tasks: str = typer.Option("ml45-train", help="a suite (ml45-train, mt10, mt50, ...) or comma-separated "
                                                          "env ids"),
             exclude: list[str] = typer.Option([], help="a task to leave out (repeatable)"),
             out: Path = OUT_OPTION,
             demos_per_task: int = typer.Option(50, min=1, help="expert demos recorded per task"),
             policy: Optional[str] = typer.Option(None, help="policy class inside the task conditioning: mlp "
                                                            "(default), act, diffusion"),
             workers: int = typer.Option(2, min=1, help="rollout workers for recording"),
             config: Optional[Path] = typer.Option(None, help="YAML file of PretrainConfig fields"),
             set_: list[str] = typer.Option([], "--set", help="override, e.g. --set train.steps=50000"),
             seed: int = typer.Option(0)) -> None:
    """Multi-task pretraining: record scripted demos of many tasks, train one task-conditioned policy with a
    steps-to-go head; adapt it to a new task with train bc --init."""
    _train("pretrain", config, [f"tasks={tasks}", f"demos_per_task={demos_per_task}", f"workers={workers}",
                                f"seed={seed}", *([f"policy={policy}"] if policy else []),
                                *([f"exclude=[{','.join(exclude)}]"] if exclude else []), *set_], out)
    console.print(f"pretrained: {out}/checkpoints/best.pt (adapt with: automimic train bc --init {out} ...; "
                  f"evaluate with: automimic eval {out} --suite <suite>)", highlight=False)


@train_app.command("dagger")
def train_dagger_cmd(data: Path = DEMOS_OPTION,
                     out: Path = OUT_OPTION,
                     env: Optional[str] = ENV_OPTION,
                     rounds: int = typer.Option(4, min=0, help="DAgger rounds after the BC round"),
                     config: Optional[Path] = typer.Option(None, help="YAML file of DAggerConfig fields"),
                     set_: list[str] = typer.Option([], "--set", help="override, e.g. --set beta_schedule=exponential"),
                     seed: int = typer.Option(0)) -> None:
    """DAgger: roll out the learner, let the expert label what it visits, aggregate, retrain; one line per round."""
    rows = _train("dagger", config, [f"data={data}", f"rounds={rounds}", f"seed={seed}",
                                     *([f"env_id={env}"] if env else []), *set_], out)
    console.print(f"trained: {out}/round_{rows[-1].round}/checkpoints/last.pt (evaluate with: automimic eval {out})",
                  highlight=False)


def _train_rl(algo: str, data: Path, out: Path, env: Optional[str], iterations: int, config: Optional[Path],
              set_: list[str], seed: int) -> None:
    """Shared body of the RL training commands (gail, airl, bc-rl, residual)."""
    _train(algo, config, [f"data={data}", f"rl.iterations={iterations}", f"seed={seed}",
                          *([f"env_id={env}"] if env else []), *set_], out)
    console.print(f"trained: {out}/rl.pt, report: {_report(out)} (evaluate with: automimic eval {out})",
                  highlight=False)


def _rl_command(algo: str, config_name: str, summary: str) -> None:
    """Register ``automimic train <algo>``; the four RL commands differ only in these three words."""

    def command(data: Path = DEMOS_OPTION,
                out: Path = OUT_OPTION,
                env: Optional[str] = ENV_OPTION,
                iterations: int = typer.Option(20, min=0, help="PPO iterations"),
                config: Optional[Path] = typer.Option(None, help=f"YAML file of {config_name} fields"),
                set_: list[str] = typer.Option([], "--set", help="override, e.g. --set rl.steps_per_iteration=4096"),
                seed: int = typer.Option(0)) -> None:
        _train_rl(algo, data, out, env, iterations, config, set_, seed)

    command.__doc__ = summary
    train_app.command(algo)(command)


_rl_command("gail", "AdversarialConfig", "GAIL: PPO on a discriminator's reward (expert vs policy transitions); "
            "one line per iteration.")
_rl_command("airl", "AdversarialConfig", "AIRL: PPO on the reward f(s, s') - log pi(a|s) of AIRL's discriminator; "
            "one line per iteration.")
_rl_command("bc-rl", "BCRLConfig", "BC -> RL: behaviour cloning, then PPO on the env's reward with a BC regulariser; "
            "one line per iteration.")
_rl_command("residual", "ResidualRLConfig", "Residual RL: freeze a BC policy, PPO learns a bounded correction on the "
            "env's reward; one line per iteration.")


@improve_app.command("seil")
def improve_seil(data: Path = DEMOS_OPTION,
                 out: Path = OUT_OPTION,
                 env: Optional[str] = ENV_OPTION,
                 rounds: int = typer.Option(4, min=0, help="self-evolution rounds after the BC round"),
                 init: Optional[Path] = INIT_OPTION,
                 finetune: str = FINETUNE_OPTION,
                 config: Optional[Path] = typer.Option(None, help="YAML file of SEILConfig fields"),
                 set_: list[str] = typer.Option([], "--set", help="override, e.g. --set selector=diverse"),
                 seed: int = typer.Option(0)) -> None:
    """SEIL: practise, keep selected successes as demonstrations, retrain; one line per round."""
    _train("seil", config, [f"data={data}", f"rounds={rounds}", f"seed={seed}", *([f"env_id={env}"] if env else []),
                            *_init_overrides(init, finetune), *set_], out)
    console.print(f"report: {_report(out)} (evaluate with: automimic eval {out})", highlight=False)


@improve_app.command("steps-to-go")
def improve_steps_to_go(data: Path = DEMOS_OPTION,
                        out: Path = OUT_OPTION,
                        env: Optional[str] = ENV_OPTION,
                        iterations: int = typer.Option(20, min=0, help="practice iterations"),
                        robots: int = typer.Option(8, min=1, help="simulated robots each worker steps together"),
                        init: Optional[Path] = INIT_OPTION,
                        finetune: str = FINETUNE_OPTION,
                        config: Optional[Path] = typer.Option(None, help="YAML file of StepsToGoConfig fields"),
                        set_: list[str] = typer.Option([], "--set", help="override, e.g. --set gamma=0.95"),
                        seed: int = typer.Option(0)) -> None:
    """Steps-to-go self-improvement: BC + steps-to-go, calibrate the detector, practise on the learned reward."""
    from automimic.algos.steps_to_go import SIM_SUCCESS_NOTE

    console.print(SIM_SUCCESS_NOTE, highlight=False)
    _train("steps-to-go", config, [f"data={data}", f"iterations={iterations}", f"robots={robots}", f"seed={seed}",
                                   *([f"env_id={env}"] if env else []), *_init_overrides(init, finetune), *set_], out,
           on_calibration=_print_row)
    console.print(f"report: {_report(out)}", highlight=False)


@improve_app.command("practice")
def improve_practice(data: Path = DEMOS_OPTION,
                     out: Path = OUT_OPTION,
                     env: Optional[str] = ENV_OPTION,
                     demos: int = typer.Option(0, min=0, help="demos to use, spread over the store (0: all)"),
                     reward: str = typer.Option("success", help="success (sparse, from the simulator), env (the env's "
                                                                "own reward), or learned without reading either: "
                                                                "steps-to-go (the BC prior's head) or ot (ROT)"),
                     prior: str = typer.Option("select", help="how the demo policy stays in the loop: select (IBRL), "
                                                              "residual, or bc (actor with a BC term)"),
                     budget: int = typer.Option(100_000, min=1, help="env steps of practice"),
                     workers: int = typer.Option(1, min=1, help="rollout workers"),
                     init: Optional[Path] = INIT_OPTION,
                     finetune: str = FINETUNE_OPTION,
                     config: Optional[Path] = typer.Option(None, help="YAML file of PracticeConfig fields"),
                     set_: list[str] = typer.Option([], "--set", help="override, e.g. --set utd=1 --set update.n_step=5"),
                     seed: int = typer.Option(0)) -> None:
    """Off-policy practice: demos and every practice step in a replay, a critic, the BC policy as prior; one line
    per evaluation."""
    _train("practice", config, [f"data={data}", f"demos={demos}", f"reward={reward}", f"prior={prior}",
                                f"budget={budget}", f"workers={workers}", f"seed={seed}",
                                *([f"env_id={env}"] if env else []), *_init_overrides(init, finetune), *set_], out)
    console.print(f"report: {_report(out)} (evaluate with: automimic eval {out})", highlight=False)


@app.command()
def calibrate(run: Path = typer.Argument(..., help="a training run whose policy has a steps-to-go head, or a "
                                                   "steps-to-go run (its sft/ policy is used)"),
              env: Optional[str] = typer.Option(None, help="env id (default: the run's)"),
              episodes: int = typer.Option(50, min=1, help="held-out rollouts of the policy"),
              noise: float = typer.Option(0.3, min=0.0, help="action noise, so that some rollouts fail"),
              seed: int = typer.Option(0, help="selects the calibration seed block"),
              workers: int = typer.Option(1, min=1)) -> None:
    """Pick the success detector's threshold s on held-out rollouts; report precision and recall."""
    from automimic.algos.bc import load_run_policy
    from automimic.algos.calibration import calibrate as calibrate_detector
    from automimic.training.run_dir import RunDir

    policy_run = run / "sft" if (run / "sft").is_dir() else run
    if (run / "practice.pt").exists():
        _fail(f"{run}: practice has started with the current threshold; calibrate before practising")
    try:
        policy = load_run_policy(policy_run, "last")
        env_id = env or RunDir(policy_run).read_config().get("env_id") or RunDir(run).read_config().get("env_id")
        if not env_id:
            raise ValueError(f"{run}: the run names no env; pass --env")
        result = calibrate_detector(policy, env_id, episodes, seed=seed, workers=workers, action_noise=noise)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    result.save(run / "calibration.json")
    console.print(result.line(), highlight=False)
    console.print(f"written: {run / 'calibration.json'}", highlight=False)


@app.command("eval")
def eval_cmd(run: Path = typer.Argument(..., help="run folder"),
             episodes: int = typer.Option(50, min=1),
             env: Optional[str] = typer.Option(None, help="env id (default: the run's)"),
             checkpoint: Optional[str] = typer.Option(None, help="training (bc) runs: best (default) | last; "
                                                                "other runs have one policy to evaluate"),
             seed: int = typer.Option(0, help="selects the evaluation seed block"),
             workers: int = typer.Option(1, min=1, help="worker processes"),
             horizon: Optional[int] = typer.Option(None, help="step budget (default: the env's)"),
             video: int = typer.Option(0, min=0, help="also write MP4s of this many episodes"),
             sample: bool = typer.Option(False, help="sample a stochastic policy instead of its mean action"),
             suite: Optional[str] = typer.Option(None, help="evaluate on many tasks: a suite (mt10, mt50, "
                                                            "ml10-train|test, ml45-train|test) or tasks a,b,c"),
             exclude: list[str] = typer.Option([], help="with --suite: leave out these tasks (repeat or a,b)")) -> None:
    """Success rate with a 95% Wilson interval, mean length and the seeds, on evaluation-only seeds.

    RUN is any run folder: its config.yaml names the algorithm, which says which policy is
    evaluated (a training run's best or last checkpoint, the last round of SEIL or DAgger, the
    policy after RL or practice). See ``automimic algos``. With ``--suite``, every task of the suite
    (per task, per difficulty tier, mean) into RUN/eval_<suite>.json and .md (``--exclude`` adds
    ``-without-<tasks>`` to the name); an interrupted suite evaluation continues from
    RUN/eval_<suite>.cache.json when run again.
    """
    from automimic.algos.registry import load_folder_policy, of_folder
    from automimic.envs.suites import resolve_tasks, suite_label
    from automimic.evaluation.evaluate import check_policy_env, evaluate, record_videos
    from automimic.evaluation.multitask import evaluate_tasks, policy_digest
    from automimic.evaluation.video import RenderUnavailable

    if suite is None and exclude:
        _fail("--exclude works with --suite")
    if suite is not None and (env or video):
        _fail(f"--suite evaluates the suite's tasks; drop {'--env' if env else '--video'}")
    try:
        policy, which = load_folder_policy(run, checkpoint)
        if suite is not None:
            tasks = resolve_tasks(suite, exclude)
            label = suite_label(suite, exclude)
            result = evaluate_tasks(policy, tasks, episodes, seed=seed, workers=workers, horizon=horizon,
                                    deterministic=not sample, cache=run / f"eval_{label}.cache.json",
                                    key=f"{which}:{policy_digest(policy)}")
            result.save(run / f"eval_{label}.json")
            (run / f"eval_{label}.md").write_text(result.markdown())
            console.print(result.markdown(), markup=False, highlight=False, soft_wrap=True)
            console.print(f"{suite} ({which}): {result.line()}", highlight=False)
            console.print(f"written: {run / f'eval_{label}.json'}, {run / f'eval_{label}.md'}", highlight=False)
            return
        env_id = env or of_folder(run)[1].get("env_id")
        if not env_id:
            _fail(f"{run}: the run records no env id; pass --env")
        check_policy_env(policy, env_id, str(run))
        result = evaluate(policy, env_id, episodes, seed=seed, workers=workers, horizon=horizon,
                          deterministic=not sample)
        result.save(run / "eval.json")
        console.print(f"{env_id} ({which}): {result.line()}", highlight=False)
        console.print(f"seeds: {result.seeds[0]}..{result.seeds[-1]} (eval range; full list in {run}/eval.json)",
                      highlight=False)
        if video:
            for path in record_videos(policy, env_id, run / "videos", video, seed=seed, horizon=horizon):
                console.print(f"video: {path}", highlight=False)
    except (ValueError, FileNotFoundError, RenderUnavailable) as err:
        _fail(str(err))


@app.command()
def report(run: Path = typer.Argument(..., help="run folder")) -> None:
    """Write a run folder's report.md (tables and plots of its progress rows), whichever algorithm wrote it."""
    console.print(f"report: {_report(run)}", highlight=False)


@app.command()
def resume(run: Path = typer.Argument(..., help="run folder to resume under the config it recorded")) -> None:
    """Resume an interrupted run (any algorithm) from its folder, without redoing finished work."""
    from automimic.algos.registry import of_folder, resume as resume_folder
    from automimic.data.store import StoreError

    try:
        resume_folder(run, True, _print_row)
    except (ValueError, StoreError, FileNotFoundError) as err:
        _fail(str(err))
    console.print(f"{of_folder(run)[0].name} run finished: {run} (evaluate with: automimic eval {run})",
                  highlight=False)


@app.command()
def algos() -> None:
    """List the registered algorithms: what each run folder records as algo, and what eval evaluates."""
    from automimic.algos.registry import get, names

    for name in names():
        a = get(name)
        console.print(f"{name}: {a.config.__name__}, eval: {' | '.join(a.checkpoints) or a.evaluated}"
                      + (", report" if a.report else ""), highlight=False)


@app.command()
def run(out: Path = typer.Option(Path("runs/main"), help="run folder"),
        env: Optional[str] = typer.Option(None, help="env id (default: metaworld/push-v3)"),
        demos: int = typer.Option(5, min=1), rounds: int = typer.Option(3, min=0, help="SEIL rounds after BC"),
        practice: int = typer.Option(50, min=1, help="practice episodes per model per round"),
        episodes: int = typer.Option(50, min=1, help="evaluation episodes per round"),
        steps: int = typer.Option(3000, min=1, help="training steps per round"),
        seed: int = typer.Option(0), workers: int = typer.Option(2, min=1)) -> None:
    """Main job: expert demos -> BC -> SEIL rounds, printed as a table of success per round (resumes from --out)."""
    from automimic.pipeline import DEFAULT_ENV, run_pipeline

    s = run_pipeline(out, env or DEFAULT_ENV, demos, rounds, practice, episodes, steps, seed, workers,
                     on_round=lambda row: console.print(row.line(), highlight=False))
    table = Table(title=f"automimic run: {s.env_id}, {s.demos} expert demos, seed {seed}")
    for col in ("stage", "success", "95% CI", "trained on", "practice", "successes", "selected", "time (s)"):
        table.add_column(col)
    for r in s.rounds:
        table.add_row(f"BC ({s.demos} demos)" if r.round == 0 else f"SEIL round {r.round}", f"{r.success:.2f}",
                      f"[{r.ci_low:.2f}, {r.ci_high:.2f}]", str(r.train_episodes), str(r.practice),
                      str(r.successes), str(r.selected), f"{r.seconds:.0f}")
    console.print(table)
    total = s.collect_seconds + sum(r.seconds for r in s.rounds)
    console.print(f"run folder: {out} (demos.h5, seil/report.md); {total:.0f}s in all", highlight=False)


if __name__ == "__main__":
    app()
