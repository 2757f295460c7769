"""The Ray executor: the plan's stages as Ray tasks, shared inputs in Ray's object store.

Ray core only: each task is a ``ray.remote`` call (one CPU, the kernels on one thread,
spread over the nodes), retried by Ray up to ``max_retries`` times when its worker or
node dies; the row blocks are ``ray.put`` once and passed to every task that reads them
(zero-copy on the node that holds them, fetched once by any other node).

``address=None`` joins the runtime this process already has (``ray.init`` done by the
caller), else starts a local one bound to 127.0.0.1 without the dashboard, and shuts it
down on :meth:`RayExecutor.close`. ``"auto"`` or ``"host:port"`` joins that cluster.

Without Ray installed, :func:`require_ray` raises a one-line :class:`ConfigError`
saying how to install it.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any, TypeVar

from simclust.distributed._executor import Executor, Task, check_parts
from simclust.exceptions import ConfigError, DistributedError, SimclustError
from simclust.progress import StageProgress

__all__ = ["INSTALL_HINT", "LOOPBACK", "RayExecutor", "require_ray"]

T = TypeVar("T")

INSTALL_HINT = 'backend ray needs Ray, which is not installed: pip install "simclust[ray]"'
LOOPBACK = "127.0.0.1"
"""The address a local runtime binds (``_node_ip_address``): nothing listens elsewhere."""

_WAIT_SECONDS = 0.5
"""How long one wait for finished tasks blocks: Ctrl-C is seen within this."""


def require_ray() -> ModuleType:
    """``import ray``, or a one-line :class:`ConfigError` saying how to install it.

    Raises:
        ConfigError: Ray is not importable.

    """
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].removeprefix("ray://")
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")


def _resolve_address(ray: ModuleType, address: str) -> str:
    """``"auto"`` as the cluster address it stands for (to see whether it is loopback)."""
    if address != "auto":
        return address
    try:  # the same lookup ray.init(address="auto") does
        from ray._private.services import canonicalize_bootstrap_address_or_die

        return str(canonicalize_bootstrap_address_or_die("auto"))
    except Exception as exc:  # no cluster: ray.init gives the message
        raise ConfigError(f"run.address: 'auto' found no running Ray cluster ({exc})") from None


LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
"""The environment that keeps a Ray runtime on loopback (set while ``ray.init`` runs).

Ray rewrites 127.0.0.1 in a node address or a cluster address to the machine's network
address (``ray._private.services.resolve_ip_for_localhost``) unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``; with the node address kept at 127.0.0.1 the
GCS, raylet, object manager, agents and workers listen on 127.0.0.1 only (Ray's gRPC
servers bind loopback when the node address is 127.0.0.1, else every interface).
``RAY_USAGE_STATS_ENABLED=0``: no usage report is sent anywhere."""


@contextlib.contextmanager
def _loopback(ray: ModuleType) -> Iterator[None]:
    """While Ray starts or joins a runtime: 127.0.0.1 stays 127.0.0.1 (see LOOPBACK_ENV).

    The environment is inherited by the processes Ray starts; Ray's constant, read at
    import, is set for this process too (and put back after).
    """
    constants = ray._private.ray_constants
    saved_env = {k: os.environ.get(k) for k in LOOPBACK_ENV}
    saved = constants.ENABLE_RAY_CLUSTER
    os.environ.update(LOOPBACK_ENV)
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _first_line(exc: BaseException) -> str:
    """An error's message up to its first line break (Ray appends tracebacks)."""
    return (str(exc).strip().splitlines() or [""])[0]


def _call(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """Inside a task: ``fn(*args)`` and the id of the node it ran on."""
    import ray

    return ray.get_runtime_context().get_node_id(), fn(*args)


def _call_keep(fn: Callable[..., Any], *args: Any) -> tuple[tuple[str, Any], Any]:
    """:func:`_call` for an ``fn`` returning ``(result, kept)``.

    Two task returns: ``(node, result)``, and ``kept`` (left in the object store).
    """
    import ray

    result, kept = fn(*args)
    return (ray.get_runtime_context().get_node_id(), result), kept


def _call_parts(
    n: int, stage: str, task: str, fn: Callable[..., Any], *args: Any
) -> tuple[Any, ...]:
    """:func:`_call_keep` for a ``kept`` of ``n`` parts: ``1 + n`` task returns."""
    import ray

    result, kept = fn(*args)
    return ((ray.get_runtime_context().get_node_id(), result), *check_parts(kept, n, stage, task))


class RayExecutor(Executor):
    """Runs the stages of a plan as Ray tasks (see the module docs).

    Args:
        address: the cluster to join (``"auto"``, ``"host:port"``); ``None``: the
            runtime this process has, else a local one on 127.0.0.1.
        num_cpus: CPUs of a local runtime this executor starts (default: Ray's, all).
        object_store_memory: bytes of a local runtime's object store (default: Ray's).
        task_cpus: CPUs a task reserves, and threads its kernels use.
        max_retries: times Ray reruns a task whose worker or node died.

    Attributes:
        nodes_used: per stage, how many tasks ran on each node (by node id): where the
            tasks were placed, as recorded by the tasks themselves.

    Raises:
        ConfigError: Ray is not installed, or ``address`` names no cluster.

    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        object_store_memory: int | None = None,
        task_cpus: int = 1,
        max_retries: int = 3,
    ) -> None:
        ray = self._ray = require_ray()
        self.task_threads: int | None = task_cpus
        self.max_retries = max_retries
        self._task_cpus = task_cpus
        self.nodes_used: dict[str, collections.Counter[str]] = {}
        self._owns = False
        if ray.is_initialized():
            return  # the caller's runtime (or cluster): used, never shut down here
        quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
        if address is None or address == "local":
            with _loopback(ray):  # a new runtime ("local": never a cluster found on disk)
                ray.init(
                    address="local",
                    num_cpus=num_cpus,
                    object_store_memory=object_store_memory,
                    include_dashboard=False,
                    _node_ip_address=LOOPBACK,
                    **quiet,
                )
        else:
            with _loopback(ray):
                resolved = _resolve_address(ray, address)
            loop = _is_loopback(resolved)
            try:
                with _loopback(ray) if loop else contextlib.nullcontext():
                    ray.init(  # "auto" as given: Ray then also finds the cluster's token
                        address=address,
                        **({"_node_ip_address": LOOPBACK} if loop else {}),
                        **quiet,
                    )
            except ConnectionError as exc:
                raise ConfigError(
                    f"run.address: cannot join Ray at {address!r}: {_first_line(exc)} (a cluster "
                    "started by `ray start` uses token authentication: set RAY_AUTH_MODE=token, "
                    "or use address 'auto' on its head node)"
                ) from None
        self._owns = True

    # ------------------------------------------------------------------ objects

    def put(self, value: Any) -> Any:
        """``ray.put(value)``: an object-store reference."""
        return self._ray.put(value)

    def get(self, handle: Any) -> Any:
        """``ray.get(handle)``."""
        return self._ray.get(handle)

    # ------------------------------------------------------------------ tasks

    def imap(
        self,
        stage: str,
        fn: Callable[..., T],
        tasks: Sequence[Task],
        *,
        progress: StageProgress | None = None,
    ) -> Iterator[tuple[int, T]]:
        """Submit every task; yield ``(index, result)`` as each finishes.

        Leaving early (an error, Ctrl-C, the caller closing the iterator) cancels the
        tasks still running or queued (``ray.cancel(force=True)``).
        """
        for i, value, _ in self._run(stage, fn, tasks, progress, keep=False):
            yield i, value

    def imap_keep(
        self,
        stage: str,
        fn: Callable[..., tuple[T, Any]],
        tasks: Sequence[Task],
        *,
        progress: StageProgress | None = None,
        parts: Sequence[int] | None = None,
    ) -> Iterator[tuple[int, T, Any]]:
        """:meth:`imap` with the kept part left in the object store.

        It is a task's second return (rebuilt by Ray's lineage if its node dies); its
        reference is the handle. With ``parts``: returns 2 to ``1 + parts[i]``, a list
        of references.
        """
        yield from self._run(stage, fn, tasks, progress, keep=True, parts=parts)

    def _run(
        self,
        stage: str,
        fn: Callable[..., Any],
        tasks: Sequence[Task],
        progress: StageProgress | None,
        *,
        keep: bool,
        parts: Sequence[int] | None = None,
    ) -> Iterator[tuple[int, Any, Any]]:
        ray = self._ray
        options = {
            "num_cpus": self._task_cpus,
            "max_retries": self.max_retries,
            "retry_exceptions": False,
            "scheduling_strategy": "SPREAD",
        }
        remote = ray.remote(_call_keep if keep else _call).options(
            num_returns=2 if keep else 1, **options
        )
        split = ray.remote(_call_parts)
        total = len(tasks)
        if progress is not None:
            progress(stage, 0, total)
        pending: dict[Any, int] = {}
        kept: dict[int, Any] = {}
        for i, task in enumerate(tasks):
            if parts is not None:
                n = max(1, parts[i])  # fewer than 1 part: the task says so, as an error
                refs, *kept[i] = split.options(num_returns=1 + n, **options).remote(
                    n, stage, task.name, fn, *task.args
                )
            elif keep:
                refs, kept[i] = remote.remote(fn, *task.args)
            else:
                refs = remote.remote(fn, *task.args)
            pending[refs] = i
        nodes = self.nodes_used.setdefault(stage, collections.Counter())
        done = 0
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=_WAIT_SECONDS)
                for ref in ready:
                    i = pending.pop(ref)
                    node, value = self._result(stage, tasks[i], ref)
                    nodes[node] += 1
                    done += 1
                    if progress is not None:
                        progress(stage, done, total)
                    yield i, value, kept.get(i)
        finally:
            for ref in pending:  # left early: nothing keeps running for a dead run
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # finished meanwhile, or its node is gone
                    pass

    def _result(self, stage: str, task: Task, ref: Any) -> tuple[str, Any]:
        """One finished task's ``(node, value)``, or its failure as a simclust error."""
        ray = self._ray
        try:
            node, value = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the function raised: not retried
            cause = exc.cause
            where = f"backend ray, stage {stage!r}, {task.name}"
            if isinstance(cause, SimclustError):
                try:
                    wrapped = type(cause)(f"{where}: {cause}")
                except Exception:
                    wrapped = DistributedError(f"{where}: {cause}")
                raise wrapped from None
            raise DistributedError(
                f"{where} failed: {type(cause).__name__}: {_first_line(cause)}"
            ) from None
        except ray.exceptions.RayError as exc:  # worker, node or object lost for good
            raise DistributedError(
                f"backend ray, stage {stage!r}, {task.name} failed after "
                f"{self.max_retries} retries: {type(exc).__name__}: {_first_line(exc)}"
            ) from None
        return str(node), value

    # ------------------------------------------------------------------ lifecycle

    def describe(self) -> dict[str, Any]:
        """``executor``, alive ``nodes`` and cluster ``cpus``, and tasks per node."""
        ray = self._ray
        alive = [n for n in ray.nodes() if n.get("Alive")]
        used: collections.Counter[str] = collections.Counter()
        for counts in self.nodes_used.values():
            used.update(counts)
        return {
            "executor": self.name,
            "nodes": len(alive),
            "cpus": int(ray.cluster_resources().get("CPU", 0)),
            "nodes_used": len(used),
        }

    def close(self) -> None:
        """Shut down the runtime this executor started or joined; leave the caller's."""
        if self._owns:
            self._owns = False
            self._ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
