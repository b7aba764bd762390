"""Stage 4: DeepCluster (Caron et al., ECCV 2018) on spike snippets.

Each round: embed the training snippets with the current CNN; reduce the embedding
(PCA; see ``reduce_embedding`` for why neither whitening nor L2); cluster with k-means into more clusters than there are likely units; then train
the CNN for a fixed number of steps on those cluster ids with a freshly initialised head and
class-balanced sampling. Rounds stop when consecutive assignments agree (normalised
mutual information above ``nmi_stop``, or no longer rising) or after ``max_rounds``. Each round is
checkpointed so that an interrupted run resumes at the round it was in.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import normalized_mutual_info_score
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, WeightedRandomSampler

from ..learning.distributed import broadcast_object, gather_in_order, is_distributed, is_main_process, rank, shard, world_size
from ..learning.models import PCAEncoder, SnippetClassifier, SnippetEncoder
from .snippets import SnippetDataset, SnippetStore
from ..learning.torch_utils import torch_generator
from ..learning.training import fit, load_checkpoint, predict, save_atomic

logger = logging.getLogger(__name__)

NMI_PLATEAU = 0.01
STEPS_CSV = "deepcluster_steps.csv"
HISTORY_COLUMNS = ["round", "n_clusters", "train_loss", "train_accuracy", "nmi", "seconds"]


@dataclass
class DeepClusterResult:
    model: SnippetClassifier
    train_indices: np.ndarray
    history: list[dict] = field(default_factory=list)
    # The training peaks' embedding by the final model, when the last round computed it and did
    # not train after (the usual stop); the units stage then need not embed them again.
    embedding: np.ndarray | None = None
    # pseudo_labels="isosplit": the last round's clusters of the training peaks (-1: none), which are
    # the units; and every round's, for reporting (round 0: the clusters the first training used).
    labels: np.ndarray | None = None
    round_labels: list[np.ndarray] = field(default_factory=list)


def choose_training_peaks(n_peaks: int, max_peaks: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded, sorted subsample: training cost and memory stay flat on long recordings."""
    if n_peaks <= max_peaks:
        return np.arange(n_peaks)
    return np.sort(rng.choice(n_peaks, size=max_peaks, replace=False))


def number_of_clusters(num_channels: int, n_train: int, cluster_factor: float) -> int:
    """``cluster_factor`` clusters per channel, at least 10 (a tetrode can hold that many units), bounded by the data."""
    k = max(int(round(cluster_factor * num_channels)), 10)
    return int(np.clip(k, 2, max(2, n_train // 20)))


def reduce_embedding(embedding: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """PCA of the embedding, neither whitened nor L2-normalised.

    DeepCluster whitens and L2-normalises 4096-D image features. On our 16-D spike
    embedding both hurt (measured on the 32-channel reference case: kNN accuracy of the
    learned embedding 0.925 with whitening + L2, 0.970 without): whitening inflates the
    noise directions to the weight of the unit-separating ones, and normalising discards
    amplitude, which tells units apart.
    """
    n_components = int(min(n_components, embedding.shape[1], max(len(embedding) - 1, 1)))
    return PCA(n_components=n_components, random_state=seed).fit_transform(embedding).astype(np.float32)


def raw_pca_features(store: SnippetStore, indices: np.ndarray, seed: int, n_components: int = 10) -> np.ndarray:
    """PCA of the raw training snippets (at most ``max_training_peaks`` of them, so bounded memory)."""
    flat = np.asarray(store.snippets[indices], dtype=np.float32).reshape(len(indices), -1) / store.scale
    n_components = int(min(n_components, flat.shape[1], max(len(indices) - 1, 1)))
    return PCA(n_components=n_components, random_state=seed).fit_transform(flat)


def fit_pca_encoder(store: SnippetStore, indices: np.ndarray, n_components: int, seed: int) -> PCAEncoder:
    """PCA of the training snippets as the network would see them ((channels, time), scaled), as an encoder."""
    flat = np.asarray(store.snippets[indices], dtype=np.float32).transpose(0, 2, 1).reshape(len(indices), -1)
    n_components = int(min(n_components, flat.shape[1], max(len(indices) - 1, 1)))
    pca = PCA(n_components=n_components, random_state=seed).fit(flat / store.scale)
    return PCAEncoder(torch.from_numpy(pca.mean_), torch.from_numpy(pca.components_))


def cluster_pseudo_labels(features: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means pseudo-labels; empty or tiny clusters are re-seeded by splitting the largest ones."""
    labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(features)
    counts = np.bincount(labels, minlength=k)
    rng = np.random.default_rng(seed)
    for empty in np.flatnonzero(counts == 0):
        largest = int(np.argmax(counts))
        members = np.flatnonzero(labels == largest)
        moved = rng.choice(members, size=len(members) // 2, replace=False)
        labels[moved] = empty
        counts = np.bincount(labels, minlength=k)
    return labels


# Intersections smaller than this are boundary slivers, folded back (kmeans_runs > 1). Twice HDBSCAN's
# min_cluster_size: with 30, three runs cut the reference case's large units into pieces (0.889 -> 0.881); with 60
# they kept dev-tetrode-noisy's small unit apart on 2 of 3 seeds and the reference case at 0.889 (docs/defaults.md).
MIN_PSEUDO_CLASS = 60


def intersect_partitions(partitions: list[np.ndarray], min_size: int = MIN_PSEUDO_CLASS) -> np.ndarray:
    """Classes 0..n-1 = the non-empty intersections of the partitions' clusters. An intersection of
    fewer than ``min_size`` points (the points near a boundary that the runs drew differently) joins
    the largest intersection inside its cluster of the first partition."""
    _, combined = np.unique(np.stack(partitions, axis=1), axis=0, return_inverse=True)
    combined = combined.ravel()
    counts = np.bincount(combined)
    out = combined.copy()
    first = partitions[0]
    for cluster in np.unique(first):
        members = first == cluster
        inside = np.unique(combined[members])
        slivers = inside[counts[inside] < min_size]
        out[members & np.isin(combined, slivers)] = inside[np.argmax(counts[inside])]
    return np.unique(out, return_inverse=True)[1].ravel().astype(np.int64)


KMEANS_SEED_STEP = 7919  # far from the rounds' seed + round_index


def pseudo_labels_of_runs(features: np.ndarray, k: int, seed: int, runs: int) -> np.ndarray:
    """``runs`` k-means partitions from different starts, intersected: two units stay apart in the
    training labels when any start separates them. One start often gives a small unit the cluster of
    a large neighbour on the same channels (and spends the cluster it saved on cutting another unit);
    the network then learns to map both units together and HDBSCAN cannot part them again."""
    partitions = [cluster_pseudo_labels(features, k, seed + KMEANS_SEED_STEP * run) for run in range(runs)]
    return partitions[0] if runs == 1 else intersect_partitions(partitions)



def make_loader(dataset, batch_size: int, sampler=None) -> DataLoader:
    """Batches read from the memory-mapped snippets, in order unless a sampler decides; on a GPU
    machine two worker processes prefetch them into pinned memory so the GPU never waits for the disk."""
    gpu = torch.cuda.is_available()
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=2 if gpu else 0,
        prefetch_factor=4 if gpu else None,
        pin_memory=gpu,
    )


def embed_snippets(model: SnippetClassifier, store: SnippetStore, indices: np.ndarray, batch_size: int,
                   device: torch.device, progress: bool = False, noise_seed: int | None = None) -> np.ndarray:
    """Embeddings of the snippets at ``indices``, computed in batches (never all snippets in RAM).

    With ``noise_seed`` the network's dropout stays active, drawn from that seed: the clustering
    embedding of the sorter (``stochastic_embedding``). Without it the embedding is deterministic.
    """
    dataset = SnippetDataset(store.snippets, store.scale, indices=indices)
    loader = make_loader(dataset, batch_size=max(batch_size, 512))
    if noise_seed is None:
        return predict(model.embed, loader, device, progress=progress, description="embed").numpy()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(noise_seed)
        return predict(model.embed, loader, device, progress=progress, description="embed", dropout=True).numpy()


def embedding_noise_seed(stochastic_embedding: bool, seed: int) -> int | None:
    """The seed of the sorter's clustering embeddings, or None when they are deterministic."""
    return seed if stochastic_embedding else None


def _write_history(history: list[dict], folder: Path) -> None:
    with open(folder / "deepcluster_history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        for row in history:
            writer.writerow({key: row.get(key) for key in HISTORY_COLUMNS})


def _write_step_losses(round_number: int, losses: list[float], folder: Path, first: bool) -> None:
    """One row per optimiser step (round, step from 1, batch mean loss); rounds are appended, so a
    resumed run keeps the rows of the rounds it finished before."""
    with open(folder / STEPS_CSV, "w" if first else "a", newline="") as f:
        writer = csv.writer(f)
        if first:
            writer.writerow(["round", "step", "loss"])
        writer.writerows((round_number, step, f"{loss:.6g}") for step, loss in enumerate(losses, start=1))


def embed_training_peaks(model, store: SnippetStore, indices: np.ndarray, batch_size: int, device,
                         noise_seed: int | None = None) -> np.ndarray:
    """Embeddings of ``indices``; under torchrun each rank embeds an equal share and all get the whole, in order."""
    local, _ = shard(indices)
    seed = None if noise_seed is None else noise_seed + rank()
    return gather_in_order(embed_snippets(model, store, local, batch_size, device, noise_seed=seed), len(indices))


CHECKPOINT = "deepcluster_checkpoint.pt"


def run_deepcluster(store: SnippetStore, *, folder: Path, num_channels: int, max_training_peaks: int,
                    embedding_dim: int, cluster_factor: float, kmeans_runs: int, max_rounds: int,
                    steps_per_round: int, nmi_stop: float, batch_size: int, learning_rate: float,
                    stochastic_embedding: bool, augment: bool, features: str,
                    device: torch.device, seed: int, pseudo_labels: str = "kmeans", progress: bool = True,
                    resume: bool = False) -> DeepClusterResult:
    """Train the snippet encoder DeepCluster-style; see the module docstring.

    Under torchrun every rank calls this; rank 0 clusters, writes the checkpoint and the
    history, and the others follow its labels and decisions. ``features="pca"`` trains nothing: the
    result's model is the training snippets' PCA (``fit_pca_encoder``). ``pseudo_labels="isosplit"`` is
    ``stages.units.run_isosplit_rounds``: the callers choose it, this function refuses it.
    """
    if pseudo_labels != "kmeans":
        raise ValueError(f"run_deepcluster makes k-means pseudo-labels, not {pseudo_labels!r}")
    folder = Path(folder)
    main = is_main_process()
    if main:
        folder.mkdir(parents=True, exist_ok=True)
    train_indices = choose_training_peaks(len(store), max_training_peaks, np.random.default_rng(seed))
    if features == "pca":  # the baseline: no network is trained, the units stage clusters the snippets' PCA
        return DeepClusterResult(fit_pca_encoder(store, train_indices, embedding_dim, seed).to(device), train_indices)
    k = number_of_clusters(num_channels, len(train_indices), cluster_factor)
    torch.manual_seed(seed)
    encoder_kwargs = {"in_channels": store.n_channels, "n_samples": store.n_samples, "embedding_dim": embedding_dim}
    model = SnippetClassifier(SnippetEncoder(**encoder_kwargs), k).to(device)
    history, previous, first_round = [], None, 0
    state = load_checkpoint(folder / CHECKPOINT) if resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        history, previous, first_round = state["history"], state["labels"], state["epoch"] + 1
        logger.info("DeepCluster: resuming after round %d", first_round)
        if state.get("finished"):
            return DeepClusterResult(model, train_indices, history)
    noise_seed = embedding_noise_seed(stochastic_embedding, seed)
    train_set = SnippetDataset(store.snippets, store.scale, indices=train_indices, augment=augment, seed=seed)
    embedding = None
    for round_index in range(first_round, max_rounds):
        t0 = time.perf_counter()
        # Every round starts from a state set by (seed, round) alone, so a run resumed at
        # this round draws the same dropout masks and batches as an uninterrupted one.
        torch.manual_seed(seed * 1000 + round_index)
        # 1. Features: PCA of the raw snippets in the first round, the network's embedding after.
        embedding = None if round_index == 0 else embed_training_peaks(model, store, train_indices, batch_size,
                                                                        device, noise_seed)
        # 2. Pseudo-labels by k-means (rank 0), and whether the assignments have settled.
        labels, nmi, finished = broadcast_object(
            _cluster_round(store, train_indices, embedding, k, kmeans_runs, previous, history, nmi_stop, seed,
                           round_index)
            if main else None)
        n_classes = int(labels.max()) + 1  # k, or more where several k-means runs were intersected
        row = {"round": round_index + 1, "n_clusters": n_classes, "nmi": nmi, "train_loss": None,
               "train_accuracy": None}
        # 3. Train on them, unless settled.
        if not finished:
            embedding = None  # the model changes: this round's embedding is out of date
            trained = _train_round(model, train_set, labels, n_classes, steps_per_round=steps_per_round,
                                   batch_size=batch_size, learning_rate=learning_rate, device=device, seed=seed,
                                   round_index=round_index, progress=progress)
            row["train_loss"] = trained.history[-1]["train_loss"]
            row["train_accuracy"] = trained.history[-1]["train_accuracy"]
            if main:
                _write_step_losses(round_index + 1, trained.step_losses, folder, first=round_index == 0)
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        # 4. Checkpoint the round.
        if main:
            _save_round(model, encoder_kwargs, n_classes, history, labels, finished, folder)
        previous = labels
        if finished:
            break
    return DeepClusterResult(model, train_indices, history, embedding)


def _cluster_round(store, train_indices, embedding, k, kmeans_runs, previous, history, nmi_stop, seed, round_index):
    """(pseudo-labels, NMI with the previous round's, settled?) of one round."""
    if embedding is None:
        # Warm start: the first pseudo-labels come from PCA of the raw snippets, which
        # already separate most units; a random network's embedding does not, and on
        # the few thousand snippets of a short recording DeepCluster cannot recover.
        features = reduce_embedding(raw_pca_features(store, train_indices, seed), 32, seed)
    else:
        # Pseudo-labels come from the embedding alone: the network sees snippets centred on
        # their peak, not where the peak is, so labels that depend on position are unlearnable.
        features = reduce_embedding(embedding, 32, seed)
    labels = pseudo_labels_of_runs(features, k, seed + round_index, kmeans_runs)
    nmi = None if previous is None else float(normalized_mutual_info_score(previous, labels))
    previous_nmi = history[-1]["nmi"] if history else None
    # Settled: consecutive assignments agree, or their agreement stopped rising (k-means
    # boundaries keep jittering, so the NMI plateaus below 1 once the features are stable).
    finished = nmi is not None and (nmi >= nmi_stop or (previous_nmi is not None and nmi - previous_nmi < NMI_PLATEAU))
    return labels, nmi, finished


def _save_round(model, encoder_kwargs, k, history, labels, finished, folder: Path) -> None:
    row = history[-1]
    logger.info("DeepCluster round %d: %d clusters, loss %s, NMI %s (%.1f s)", row["round"], k,
                "-" if row["train_loss"] is None else f"{row['train_loss']:.3f}",
                "-" if row["nmi"] is None else f"{row['nmi']:.3f}", row["seconds"])
    # The constructor's arguments travel with the weights: load_trained_model rebuilds the network from them.
    save_atomic({"model": model.state_dict(), "epoch": row["round"] - 1,
                 "encoder_kwargs": encoder_kwargs, "n_classes": k, "history": history, "labels": labels,
                 "finished": finished}, folder / CHECKPOINT)
    _write_history(history, folder)


def load_trained_model(folder: Path) -> SnippetClassifier | None:
    """The network a DeepCluster run saved in ``folder``, built from its saved constructor arguments,
    on the CPU in eval mode; None when there is no readable checkpoint."""
    state = load_checkpoint(Path(folder) / CHECKPOINT)
    if state is None or "encoder_kwargs" not in state:
        return None
    model = SnippetClassifier(SnippetEncoder(**state["encoder_kwargs"]), state["n_classes"])
    model.load_state_dict(state["model"])
    return model.eval()


def _train_round(model, train_set, labels, k, *, steps_per_round: int, batch_size: int, learning_rate: float,
                 device, seed: int, round_index: int, progress: bool):
    """Fresh head and optimiser, then ``steps_per_round`` class-balanced steps (DDP under torchrun)."""
    # Fresh head: cluster ids are arbitrary, the previous head's weights mean nothing now.
    # A new optimiser too, so no Adam moment of the old head or round carries over.
    model.reset_head(k)
    trainee = model
    if is_distributed():
        trainee = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    optimizer = torch.optim.Adam(trainee.parameters(), lr=learning_rate)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    # Each rank draws its own batches, uniformly over clusters; a rank's batch is 1/world of
    # the batch, so the round takes the same number of steps on the same total batch size.
    local_batch = max(batch_size // world_size(), 1)
    sampler = WeightedRandomSampler(
        weights=torch.as_tensor(1.0 / counts[labels]),
        num_samples=steps_per_round * local_batch,
        replacement=True,
        generator=torch_generator((seed + round_index) * 1009 + rank()),
    )
    train_set.labels = labels.astype(np.int64)
    train_set.epoch = round_index
    return fit(
        trainee,
        make_loader(train_set, local_batch, sampler=sampler),
        epochs=1,
        device=device,
        optimizer=optimizer,
        progress=progress,
        description=f"DeepCluster round {round_index + 1}",
        is_main_process=is_main_process(),
    )
