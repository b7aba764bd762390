"""Stage 6: over-split units merged before template matching.

HDBSCAN's "leaf" selection keeps close units apart and so also cuts some neurons in two
(a drifting or bursting unit whose amplitude changes). Two units are merged when

* their main channels are within ``MAX_DISTANCE_UM`` of each other,
* their templates differ little: normalised L1 distance ``|a - b| / (|a| + |b|)`` on the
  union of their channels, at the best lag within ``MAX_LAG_MS`` (SpikeInterface's
  template-similarity definition), below ``merge_max_template_diff``; where ``|a - b|`` is mostly
  the noise that two means of so many spikes leave, that noise is taken off first
  (``difference_noise_variance``: a low-SNR unit's small piece otherwise looks like another unit), and
* their spike trains respect one refractory period together: fewer coincidences within
  ``REFRACTORY_MS`` than ``MAX_CROSS_CONTAMINATION`` of what two independent trains give.

Drift changes a unit's waveform beyond what motion correction restores, and the unit is
then cut in time: one fragment fires before the probe moved, the other after. When two
units fire in mostly different periods (their firing-time histograms share less than
``MAX_PRESENCE_OVERLAP``), their templates may differ by ``DRIFT_EXTRA_DIFF`` more.
Measured on the drifting Neuropixels case: split pairs differed by 0.32-0.54.

The most similar pair merges first and the merged unit's template (the spike-count
weighted mean) is compared again, so chains of fragments join one at a time.
A chain's running mean can drift within the threshold of a neuron that its first member differs
from; no merge may therefore join two units, as clustering formed them, that fire in the same periods
and differ by more than ``merge_max_template_diff`` (on dev-linear32-bumps a 636-spike unit joined a
neighbour's chain that way).

Units of the outliers' second pass (``small_unit_size``) hold few peaks, and most are pieces of a
unit the first pass formed (its spikes cut off by HDBSCAN) rather than a slow-firing neuron of its
own. Before merging, such a unit joins the first-pass unit nearby whose template differs from its own by
less than ``FRAGMENT_MAX_DIFF`` (the most similar one), or is dropped (its peaks become outliers) when its
template's peak is under ``SMALL_UNIT_MIN_SNR`` times the noise level (a few noise crossings average to
a template that still passes ``min_template_snr``). The fragment's peaks are the unit's spikes that
HDBSCAN left out; they join it without the refractory test, which a few dozen peaks cannot pass or fail.
The receiving unit's template becomes the spike-count weighted mean of its own and its fragments', so that the
merge compares the template of the spikes it counts.
A slow-firing neuron beside a faster one can also come within ``FRAGMENT_MAX_DIFF`` of it. It is kept apart,
and out of the merge, when its template stands ``OWN_NEURON_MIN_SNR`` noise levels out and is not explained
by one or two nearby first-pass units' templates (a piece, a mixture, a collision) beyond the noise of its
few spikes (``OWN_NEURON_MIN_UNEXPLAINED``).

Why not SpikeInterface's ``auto_merge_units``: it implements the same tests, but it first
compiles numba kernels (template similarity, correlograms), 10-18 s in every new process,
which was a quarter of the whole sort of a one-minute recording. Here everything is a few
NumPy operations on the already estimated templates, and merging happens before matching,
so that matching runs once with the final units.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from spikeinterface.core import Templates

MAX_DISTANCE_UM = 50.0
MAX_LAG_MS = 0.2
REFRACTORY_MS = 1.5
MAX_CROSS_CONTAMINATION = 0.25
MAX_PRESENCE_OVERLAP = 0.25
DRIFT_EXTRA_DIFF = 0.25
PRESENCE_BIN_S = 5.0
# Dev draws (dev-hybrid32, dev-3col48-lowrate), small_unit_size=10: second-pass units that matched no
# true unit differed from a first-pass unit by 0.31-0.53, the slow units it found by 0.61-0.72.
FRAGMENT_MAX_DIFF = 0.55
# The same runs with that rule: 31 of the 36 second-pass units left that matched no true unit had a template
# peak under 4 noise levels, and 8 of the 11 that matched one (agreement 0.54-1.0) 4.4 and more.
SMALL_UNIT_MIN_SNR = 4.0
# A second-pass unit that stands this far out of the noise and whose template the nearby first-pass units' templates
# leave this much unexplained (fraction of its energy, beyond what the noise of its spike count leaves) is a neuron
# of its own, kept apart and out of the merge. Dev draws (session 23, each second-pass unit labelled with the true
# unit of its peaks): pure pieces of a first-pass unit left 0.02-0.27 unexplained at 4-10 noise levels, mixtures of
# two units 0.12-0.27 at 9-14; the slow neurons that folding lost (dev-np96, dev-linear32-lowrate) 0.25-0.32 at 11-14.
OWN_NEURON_MIN_SNR = 10.0
OWN_NEURON_MIN_UNEXPLAINED = 0.2
# Lags tried when explaining a template by one or two others: a collision's second spike, or a mixture's alignment.
EXPLAIN_MAX_LAG_MS = 0.5


def presence_overlap(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """Shared fraction of two firing-time histograms: 1 when they fire alike over time, 0 when never together."""
    a, b = counts_a / max(counts_a.sum(), 1), counts_b / max(counts_b.sum(), 1)
    return float(np.minimum(a, b).sum())


def template_difference(a: np.ndarray, b: np.ndarray, max_lag: int, noise_variance: np.ndarray | None = None) -> float:
    """Smallest normalised L1 distance between two (samples, channels) templates over lags.

    ``noise_variance``: per channel, the variance that estimating the two templates from their spikes' means adds to
    each sample of their difference (:func:`difference_noise_variance`). Where the difference's energy is within
    NOISE_DOMINATED_RATIO times what that noise alone gives, each sample counts as ``sqrt(max(d**2 - variance, 0))``,
    its square's expected noise taken off; a difference far above the noise is left as it is."""
    best = np.inf
    n = a.shape[0]
    for lag in range(-max_lag, max_lag + 1):
        x = a[max(lag, 0):n + min(lag, 0)]
        y = b[max(-lag, 0):n + min(-lag, 0)]
        norm = np.abs(x).sum() + np.abs(y).sum()
        if norm > 0:
            d = x - y
            size = np.abs(d)
            if noise_variance is not None and (d ** 2).sum() <= NOISE_DOMINATED_RATIO * len(d) * noise_variance.sum():
                size = np.sqrt(np.maximum(d ** 2 - noise_variance, 0.0))
            best = min(best, float(size.sum() / norm))
    return best


# Energy of a template difference over what estimation noise alone gives, below which the noise is taken off the
# difference. Dev draws (session 18, the pairs of nearby units curation left apart): pieces of one neuron 1.9-3.7,
# distinct units estimated from hundreds of spikes 95 and more. Above it nothing changes: without this bound two such
# units 0.30 apart lost 0.015 to the noise correction and merged (dev-linear32-bumps, seed 2: 0.917 -> 0.849).
NOISE_DOMINATED_RATIO = 10.0


def difference_noise_variance(noise_levels: np.ndarray, support_a: np.ndarray, support_b: np.ndarray, count_a: int,
                              count_b: int) -> np.ndarray:
    """Per channel, the variance of a sample of the difference between two mean templates of one neuron estimated
    from ``count_a`` and ``count_b`` spikes: noise**2 x (1/count_a + 1/count_b) where both supports hold the channel
    (one term where only one template is kept there). A low-SNR unit cut in two by the clustering leaves a small
    piece whose template differs from the rest by about this noise: on dev-hybrid32 such pieces differed from their
    unit's by 0.31-0.37 and were never merged (0.18-0.23 with the noise taken off)."""
    return np.asarray(noise_levels, np.float64) ** 2 * (support_a / max(count_a, 1) + support_b / max(count_b, 1))


def cross_coincidences(train_a: np.ndarray, train_b: np.ndarray, window: int, dead: int = 0) -> int:
    """Number of spikes of ``train_a`` with a spike of ``train_b`` at most ``window`` samples away
    and, with ``dead``, more than ``dead`` samples away (sorted trains)."""
    if len(train_a) == 0 or len(train_b) == 0:
        return 0
    within = np.searchsorted(train_b, train_a + window, side="right") - np.searchsorted(train_b, train_a - window)
    if dead <= 0:
        return int((within > 0).sum())
    near = np.searchsorted(train_b, train_a + dead, side="right") - np.searchsorted(train_b, train_a - dead)
    return int((within > near).sum())


def respects_refractory_period(train_a, train_b, window: int, total_samples: int, dead: int = 0) -> bool:
    """True when the two trains coincide far less than independent trains would (one neuron).

    Only lags beyond ``dead`` count, in what is seen and in what is expected: the detector keeps
    one peak per neighbourhood and dead time, so two nearby units never show a coincidence
    closer than that, whether they are one neuron or two.
    """
    expected = 2 * (window - dead) * len(train_a) * len(train_b) / max(total_samples, 1)
    return cross_coincidences(train_a, train_b, window, dead) <= MAX_CROSS_CONTAMINATION * expected


def curate_units(templates, peaks: np.ndarray, labels: np.ndarray, noise_levels: np.ndarray, *, first_small_label: int,
                 max_template_diff: float, total_samples: int, dead_time_ms: float) -> np.ndarray:
    """Stage 6: the second pass's fragments joined to their first-pass unit and its faint units dropped
    (:func:`fold_fragment_units`), then
    over-split units merged (:func:`merge_over_split_units`). ``templates``: the mean templates of ``labels``'
    units; ``noise_levels``: per channel, in the templates' units."""
    folded, own_neurons = fold_fragment_units(templates, labels, noise_levels, first_small_label)
    return merge_over_split_units(templates_after_fold(templates, labels, folded), peaks, folded, max_template_diff,
                                  total_samples, dead_time_ms, noise_levels=noise_levels, keep_apart=own_neurons)


def fold_fragment_units(templates, labels: np.ndarray, noise_levels: np.ndarray,
                        first_small_label: int) -> tuple[np.ndarray, list[int]]:
    """(``labels`` folded, the second pass's units kept as neurons of their own). Each of the second pass's units
    (labels from ``first_small_label`` on) whose template is within FRAGMENT_MAX_DIFF of a first-pass unit's (main
    channels within MAX_DISTANCE_UM) joins the most similar such unit, unless it is a neuron of its own (peak of
    OWN_NEURON_MIN_SNR noise levels and more, and more than OWN_NEURON_MIN_UNEXPLAINED of its template left
    unexplained by one or two nearby first-pass templates: :func:`unexplained_energy`); those that peak under
    SMALL_UNIT_MIN_SNR noise levels become outliers (-1). ``templates``: the mean templates of ``labels``' units
    (unit id = label)."""
    unit_ids = np.asarray(templates.unit_ids)
    small = np.flatnonzero(unit_ids >= first_small_label)
    first = np.flatnonzero(unit_ids < first_small_label)
    if len(small) == 0:
        return labels, []
    fs = templates.sampling_frequency
    max_lag = int(round(MAX_LAG_MS * fs / 1000.0))
    explain_lag = int(round(EXPLAIN_MAX_LAG_MS * fs / 1000.0))
    dense = templates.get_dense_templates().astype(np.float64)
    support = templates.sparsity.mask
    noise_levels = np.asarray(noise_levels, np.float64)
    main = _main_positions(templates, dense)
    peak_snr = (np.abs(dense).max(axis=1) / noise_levels).max(axis=1)
    out, own = labels.copy(), []
    for i in small:
        if peak_snr[i] < SMALL_UNIT_MIN_SNR:
            out[labels == unit_ids[i]] = -1
            continue
        near = [j for j in first if main is None or np.linalg.norm(main[i] - main[j]) <= MAX_DISTANCE_UM]
        differences = [template_difference(dense[i][:, support[i] | support[j]], dense[j][:, support[i] | support[j]],
                                           max_lag) for j in near]
        if not differences or min(differences) >= FRAGMENT_MAX_DIFF:
            continue
        if peak_snr[i] >= OWN_NEURON_MIN_SNR:
            # Mixtures and collisions are explained by two units, a piece of a unit by one; candidates within
            # twice MAX_DISTANCE_UM, since a collision's two units may sit on either side of the piece.
            around = [j for j in first if main is None or np.linalg.norm(main[i] - main[j]) <= 2 * MAX_DISTANCE_UM]
            count = int((labels == unit_ids[i]).sum())
            noise_energy = float((noise_levels[support[i]] ** 2).sum()) * dense.shape[1] / max(count, 1)
            if unexplained_energy(dense[i][:, support[i]], [dense[j][:, support[i]] for j in around], explain_lag,
                                  noise_energy) > OWN_NEURON_MIN_UNEXPLAINED:
                own.append(int(unit_ids[i]))
                continue
        out[labels == unit_ids[i]] = unit_ids[near[int(np.argmin(differences))]]
    return out, own


def _shifted(template: np.ndarray, lag: int) -> np.ndarray:
    """``template`` (samples, channels) delayed by ``lag`` samples, zeros shifted in."""
    out = np.zeros_like(template)
    if lag >= 0:
        out[lag:] = template[:len(template) - lag]
    else:
        out[:lag] = template[-lag:]
    return out


def unexplained_energy(target: np.ndarray, candidates: list[np.ndarray], max_lag: int, noise_energy: float) -> float:
    """Fraction of ``target``'s energy that no sum ``a x one(lag) + b x other(lag')`` of one or two of the
    ``candidates`` (same shape, a, b >= 0, lags within ``max_lag`` samples) explains, less ``noise_energy`` (what the
    noise of the spikes averaged into ``target`` leaves, in its units), at least 0. Least squares in closed form
    over every pair of lags: a two-template fit that no SpikeInterface function offers for templates (its matching
    engines fit templates to traces)."""
    energy = float((target ** 2).sum())
    if energy == 0 or not candidates:
        return 1.0
    y = target.ravel()
    lags = range(-max_lag, max_lag + 1)
    shifted = [np.stack([_shifted(c, lag).ravel() for lag in lags]) for c in candidates]
    projections = [s @ y for s in shifted]
    norms = [(s ** 2).sum(axis=1) + 1e-12 for s in shifted]
    best = energy
    for p, n in zip(projections, norms):
        a = np.maximum(p / n, 0.0)
        best = min(best, float((energy - 2 * a * p + a * a * n).min()))
    for k in range(len(shifted)):
        for m in range(k + 1, len(shifted)):
            cross = shifted[k] @ shifted[m].T
            pk, pm = projections[k][:, None], projections[m][None, :]
            nk, nm = norms[k][:, None], norms[m][None, :]
            det = nk * nm - cross ** 2 + 1e-12
            a, b = (pk * nm - pm * cross) / det, (pm * nk - pk * cross) / det
            residual = energy - 2 * a * pk - 2 * b * pm + a * a * nk + b * b * nm + 2 * a * b * cross
            best = min(best, float(np.where((a >= 0) & (b >= 0), residual, energy).min()))
    return max(best - noise_energy, 0.0) / energy


def templates_after_fold(templates, labels: np.ndarray, folded: np.ndarray):
    """The mean templates of ``folded``'s units, from ``templates`` (those of ``labels``, unit id = label): a unit
    that took in fragments gets the spike-count weighted mean of its template and theirs, on the union of their
    channels, as a merge gives; units left without peaks are removed. The merge weighs a template difference by the
    noise of its units' spike counts, so template and count must describe the same spikes: with the first pass's
    template (34 spikes) but the folded count (77), a low-SNR neuron's two halves differed by 0.34 instead of 0.27
    and stayed apart (dev-2col8-lowsnr)."""
    if np.array_equal(folded, labels):
        return templates  # nothing folded or dropped: every unit keeps its own spikes
    unit_ids = np.asarray(templates.unit_ids)
    index = {int(u): i for i, u in enumerate(unit_ids)}
    counts = np.array([(labels == u).sum() for u in unit_ids], np.float64)
    sums = templates.get_dense_templates().astype(np.float64) * counts[:, None, None]
    mask = templates.sparsity.mask.copy()
    for i, u in enumerate(unit_ids):
        into = folded[labels == u]
        # The fold moves a unit's peaks whole, and only into first-pass units, which never move themselves.
        if len(into) and into[0] >= 0 and into[0] != u:
            j = index[int(into[0])]
            sums[j] += sums[i]
            counts[j] += counts[i]
            mask[j] |= mask[i]
    kept = np.array([i for i, u in enumerate(unit_ids) if np.any(folded == u)], dtype=int)
    dense = Templates(templates_array=(sums[kept] / counts[kept, None, None]).astype(np.float32),
                      sampling_frequency=templates.sampling_frequency, nbefore=templates.nbefore,
                      channel_ids=templates.channel_ids, unit_ids=unit_ids[kept], probe=templates.probe,
                      is_in_uV=templates.is_in_uV)
    return dense.to_sparse(mask[kept])


def _main_positions(templates, dense: np.ndarray) -> np.ndarray | None:
    """Position of each unit's main channel (largest absolute template), None without a probe."""
    if templates.probe is None:
        return None
    return templates.probe.contact_positions[np.abs(dense).max(axis=1).argmax(axis=1)]


def _unit_difference(a: dict, b: dict, max_lag: int, noise_levels: np.ndarray | None, drift: bool) -> float:
    """The template difference that ``merge_over_split_units`` compares with its threshold, for two of its units
    (template, support, count, position, presence): infinite beyond MAX_DISTANCE_UM, less DRIFT_EXTRA_DIFF for
    units that fire in different periods (``drift``: the recording holds enough presence bins to tell)."""
    if a["position"] is not None and np.linalg.norm(a["position"] - b["position"]) > MAX_DISTANCE_UM:
        return np.inf
    union = a["support"] | b["support"]
    variance = None if noise_levels is None else difference_noise_variance(
        np.asarray(noise_levels)[union], a["support"][union], b["support"][union], a["count"], b["count"])
    diff = template_difference(a["template"][:, union], b["template"][:, union], max_lag, variance)
    if drift and presence_overlap(a["presence"], b["presence"]) < MAX_PRESENCE_OVERLAP:
        diff -= DRIFT_EXTRA_DIFF  # fragments of one drifting unit: one before, one after the move
    return diff


def _distinct_together(a: dict, b: dict, max_template_diff: float, max_lag: int, noise_levels: np.ndarray | None,
                       drift: bool) -> bool:
    """True for two units, as clustering formed them, that fire in the same periods (or in a recording too short
    to tell) and whose templates differ by more than ``max_template_diff``: two neurons, which no chain of merges
    may join (fragments of a drifting unit fire in different periods, and only they may differ that much)."""
    if drift and presence_overlap(a["presence"], b["presence"]) < MAX_PRESENCE_OVERLAP:
        return False
    return _unit_difference(a, b, max_lag, noise_levels, drift=False) > max_template_diff


def _unit_states(templates, times: np.ndarray, labels: np.ndarray, bin_samples: int) -> dict:
    """Per unit what the merge compares: its template (zero off its support), spike count, support, sorted
    train, main channel's position and firing-time histogram (``bin_samples`` wide bins of ``times``)."""
    dense = templates.get_dense_templates().astype(np.float64)
    support = templates.sparsity.mask.copy()
    main = _main_positions(templates, dense)
    bins = np.arange(0, times.max() + 1 + bin_samples, bin_samples) if len(times) else np.arange(2)
    return {
        int(u): dict(template=np.where(support[i], dense[i], 0.0), count=int((labels == u).sum()), support=support[i],
                     train=np.sort(times[labels == u]), position=None if main is None else main[i],
                     presence=np.histogram(times[labels == u], bins)[0])
        for i, u in enumerate(templates.unit_ids)
    }


def merge_over_split_units(templates, peaks: np.ndarray, labels: np.ndarray, max_template_diff: float,
                           total_samples: int, dead_time_ms: float = 0.0,
                           noise_levels: np.ndarray | None = None, keep_apart=()) -> np.ndarray:
    """Labels (0..n-1, -1 for outliers) where the fragments of one unit carry one label.

    ``templates`` are the mean templates of ``labels``' units (unit id = label) and
    ``total_samples`` the recording's length in samples over all segments, ``dead_time_ms`` the
    detector's dead time (its ``exclude_sweep_ms``). With ``noise_levels`` (per channel, in the
    templates' units) the template difference of a pair discounts what the noise of their spike
    counts gives (:func:`difference_noise_variance`). A merge is refused when it would join two of the
    units as they came that fire together and differ by more than ``max_template_diff``
    (:func:`_distinct_together`), however close the running means of their chains have come. Units in
    ``keep_apart`` (neurons of their own, :func:`fold_fragment_units`) are never merged.
    """
    if max_template_diff <= 0 or len(templates.unit_ids) < 2:
        return labels
    fs = templates.sampling_frequency
    max_lag = int(round(MAX_LAG_MS * fs / 1000.0))
    window = int(round(REFRACTORY_MS * fs / 1000.0))
    dead = min(int(round(dead_time_ms * fs / 1000.0)), window - 1)
    # One time axis over segments so that coincidences never pair spikes of different segments.
    times = peaks["sample_index"].astype(np.int64) + peaks["segment_index"].astype(np.int64) * (total_samples + 10 * window)
    state = _unit_states(templates, times, labels, int(PRESENCE_BIN_S * fs))
    drift = len(next(iter(state.values()))["presence"]) > 2  # enough presence bins to tell periods apart
    original = {u: dict(unit) for u, unit in state.items()}  # merges replace a unit's entries, never change them
    members = {u: [u] for u in state}

    def difference(u, v) -> float:
        return _unit_difference(state[u], state[v], max_lag, noise_levels, drift=drift)

    @cache
    def distinct_together(m, n) -> bool:
        return _distinct_together(original[m], original[n], max_template_diff, max_lag, noise_levels, drift)

    keep_apart = set(keep_apart)
    unit_ids = [u for u in state if u not in keep_apart]
    pairs = {(u, v): difference(u, v) for i, u in enumerate(unit_ids) for v in unit_ids[i + 1:]}
    pairs = {pair: d for pair, d in pairs.items() if d <= max_template_diff}
    refused = set()
    while candidates := [(d, pair) for pair, d in pairs.items() if pair not in refused]:
        _, (u, v) = min(candidates)
        if not respects_refractory_period(state[u]["train"], state[v]["train"], window, total_samples, dead) or any(
                distinct_together(min(m, n), max(m, n)) for m in members[u] for n in members[v]):
            refused.add((u, v))
            continue
        a, b = state[u], state.pop(v)
        total = a["count"] + b["count"]
        a["template"] = (a["template"] * a["count"] + b["template"] * b["count"]) / total
        a["count"], a["support"] = total, a["support"] | b["support"]
        a["train"] = np.sort(np.concatenate([a["train"], b["train"]]))
        a["presence"] = a["presence"] + b["presence"]
        members[u] += members.pop(v)
        pairs = {pair: d for pair, d in pairs.items() if v not in pair}
        for w in state:
            pair = (min(u, w), max(u, w))
            if w != u and w not in keep_apart and (d := difference(*pair)) <= max_template_diff:
                pairs[pair] = d
                refused.discard(pair)

    merged = labels.copy()
    for u, group in members.items():
        merged[np.isin(labels, group)] = u
    # Dense labels again: templates and sortings index units by position.
    kept = np.unique(merged[merged >= 0])
    return np.where(merged >= 0, np.searchsorted(kept, merged), -1)
