"""tf.data input pipelines (TensorFlow backend) around kseg's per-image Python loaders.

    pipeline = TFPipeline(sequence, load_fn, spec, batch_size)   # see make_tf_dataset
    model.fit(pipeline.tf_dataset)   # one pass of the dataset is one epoch

The stages, per epoch (one iteration of the dataset):

    epoch order (the sequence's seeded order) -> Dataset.from_tensor_slices((epoch, position,
    image id)) -> shard by replica batches (input context) -> map(per-image loader in
    tf.numpy_function, num_parallel_calls=AUTOTUNE, deterministic=True) -> batch(drop
    remainder) -> optional batch stage -> prefetch(AUTOTUNE)

- Order: `sequence.epoch_image_ids(epoch)` gives the image id of every position of the epoch,
  the same order the `keras.utils.PyDataset` path (`MaskRCNNSequence`, `SemanticSequence`)
  uses, so both paths see the same images per epoch (and the NaN guard names them).
- Randomness: the loader gets a `np.random.Generator` seeded from (seed, epoch, position),
  never from thread timing, so seeded runs give the same batches whatever the parallelism.
  Augmenters that keep their own random state (Keras layers, imgaug, albumentations) would
  draw in thread order: with one of those the per-image stage runs serially (still in
  element order), and Keras layers of the semantic models run on whole batches after it.
- Sharding: with a `tf.distribute.InputContext` (`strategy.distribute_datasets_from_function`)
  the pipeline of worker w keeps the positions of its replicas' slices of each global batch
  and batches them per replica, so the replicas of one step together see exactly the
  global batch a single device would (disjoint, covering the epoch).
- Errors: a loader's exception (e.g. `DataError` naming the file) comes out of TensorFlow as
  an `OpError` quoting it; `reraise` turns it back into the original exception.

Shapes: a loader returns one image's arrays, in `spec` order; `spec` is {name: (shape
[B, ...] with B the global batch, numpy dtype)}, as `batch_spec(config)`.
"""

import threading
import warnings

import numpy as np

AUTOTUNE = -1  # tf.data.AUTOTUNE


class TFPipeline:
    """A seeded, sharded, parallel tf.data pipeline of batches over a sequence's order.

    Args:
        sequence: gives `epoch_image_ids(epoch)` (the image id of each position of an epoch;
            it also moves the sequence to that epoch), `seed` (None: a random one) and
            `dataset` (the kseg Dataset, for messages).
        load_fn: `load_fn(image_id, rng, position, epoch)` -> arrays of one image (spec order).
        spec: {name: (batch shape, numpy dtype)}; dict elements, or a tuple with `as_tuple`.
        batch_size: the global batch B.
        parallel: calls of the per-image stage in flight: AUTOTUNE, or an int (1: serial).
        input_context: a `tf.distribute.InputContext`, or None (one pipeline, batches of B).
        padding: None (`batch`), or padding values per output (`padded_batch`, for images of
            different sizes in "pad64" / "none" resize modes).
        prepare: None, or (fn, dtypes): a first per-image stage `fn(image_id, rng, position,
            epoch)` -> (arrays of `dtypes`) run with `parallel` calls; `load_fn` then gets
            its output as a 5th argument, with `finish_parallel` calls in flight (and a
            second generator, also seeded from (seed, epoch, position)).
        batch_fn: None or a function on a batch's numpy arrays (run serially, in order).
        drop_remainder: drop a last partial batch (needed for static shapes / replicas).
        as_tuple: elements are tuples in `spec` order instead of dicts.
        prefetch: add `prefetch(AUTOTUNE)`.
    """

    def __init__(self, sequence, load_fn, spec, batch_size, parallel=AUTOTUNE,
                 input_context=None, padding=None, batch_fn=None, drop_remainder=True,
                 as_tuple=False, prefetch=True, prepare=None, finish_parallel=AUTOTUNE):
        self.source, self.load_fn, self.spec = sequence, load_fn, dict(spec)
        self.dataset = sequence.dataset  # the kseg Dataset (`NonFiniteGuard` names files)
        seed = getattr(sequence, "seed", None)
        self.seed = int(np.random.SeedSequence().entropy % 2**63 if seed is None else seed)
        self.batch_size, self.parallel = int(batch_size), parallel
        self.input_context, self.padding, self.batch_fn = input_context, padding, batch_fn
        self.drop_remainder, self.as_tuple = drop_remainder, as_tuple
        self.prepare, self.finish_parallel = prepare, finish_parallel
        self.error = None  # the first exception a loader raised
        self._lock = threading.Lock()
        self._next = 0  # the epoch the next iteration starts
        self.epoch = -1
        self.order = np.asarray(sequence.epoch_image_ids(0), np.int64).reshape(-1)
        self.tf_dataset = self._build(prefetch)

    # === Facts for callbacks (`NonFiniteGuard`) ===
    def __len__(self):
        """Global batches per epoch."""
        count, size = len(self.order), self.batch_size
        return count // size if self.drop_remainder else -(-count // size)

    def batch_image_ids(self, index):
        """Image ids of global batch `index` of the latest started epoch."""
        return [int(i) for i in self.order[index * self.batch_size:
                                           (index + 1) * self.batch_size]]

    def start_epoch(self, epoch):
        """Make the next iteration epoch `epoch` (its order and random draws)."""
        with self._lock:
            self._next = int(epoch)

    def epoch_callback(self):
        """A Keras callback that starts each `fit` epoch at Keras' epoch number, so a pass
        Keras makes to build the model does not shift the epochs, and a resumed run sees
        the epochs an uninterrupted one would."""
        import keras

        pipeline = self

        class PipelineEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                pipeline.start_epoch(epoch)

            def on_epoch_end(self, epoch, logs=None):
                pipeline.warn_skipped()

        return PipelineEpoch()

    def warn_skipped(self):
        """Warn about the bad samples skipped (on_error="skip") since the last warning."""
        skipped = getattr(self.source, "skipped", None)
        if skipped:
            shown = ", ".join(str(s[1] if isinstance(s, tuple) else s) for s in skipped[:3])
            warnings.warn(f"epoch {self.epoch}: skipped {len(skipped)} bad sample(s) "
                          f"(on_error='skip'), e.g. {shown}", stacklevel=2)
            del skipped[:]

    def reraise(self, error):
        """Raise the loader's original exception when `error` is TensorFlow's wrapper of it."""
        import tensorflow as tf

        if self.error is not None and isinstance(error, tf.errors.OpError):
            raise self.error from None
        raise error

    # === Building ===
    def per_replica_batch(self):
        if self.input_context is None:
            return self.batch_size
        return self.input_context.get_per_replica_batch_size(self.batch_size)

    def _build(self, prefetch):
        import tensorflow as tf

        data = tf.data.Dataset.from_tensors(np.int64(0)).flat_map(self._one_epoch)
        data = self._shard(data)
        if self.prepare is None:
            data = data.map(self._load, num_parallel_calls=self.parallel, deterministic=True)
        else:
            data = data.map(self._prepare, num_parallel_calls=self.parallel, deterministic=True)
            data = data.map(self._load, num_parallel_calls=self.finish_parallel,
                            deterministic=True)
        batch = self.per_replica_batch()
        if self.padding is None:
            data = data.batch(batch, drop_remainder=self.drop_remainder)
        else:
            data = data.padded_batch(batch, padding_values=self.padding,
                                     drop_remainder=self.drop_remainder)
        if self.batch_fn is not None:
            data = data.map(self._batch_stage)  # serial: in order, after the parallel stage
        local = 1 if self.input_context is None else self.input_context.num_replicas_in_sync \
            // self.input_context.num_input_pipelines
        data = data.apply(tf.data.experimental.assert_cardinality(len(self) * local))
        options = tf.data.Options()
        options.deterministic = True
        if self.input_context is not None:  # sharded here; tf.distribute must not shard again
            options.experimental_distribute.auto_shard_policy = \
                tf.data.experimental.AutoShardPolicy.OFF
        data = data.with_options(options)
        return data.prefetch(tf.data.AUTOTUNE) if prefetch else data

    def _next_epoch(self):
        """Start an epoch: (epoch, image id of every position) from the sequence's order."""
        with self._lock:
            epoch, self._next = self._next, self._next + 1
            ids = np.asarray(self.source.epoch_image_ids(epoch), np.int64).reshape(-1)
            self.epoch, self.order = epoch, ids
        return np.int64(epoch), ids

    def _one_epoch(self, _):
        import tensorflow as tf

        epoch, ids = tf.numpy_function(self._next_epoch, [], (tf.int64, tf.int64),
                                       stateful=True, name="epoch_order")
        ids = tf.reshape(ids, [-1])
        positions = tf.range(tf.size(ids, out_type=tf.int64), dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices((tf.fill(tf.shape(ids), epoch), positions, ids))

    def _shard(self, data):
        """Keep this input pipeline's replica slices of every global batch."""
        context = self.input_context
        if context is None or context.num_input_pipelines == 1:
            return data
        pipelines, index = context.num_input_pipelines, context.input_pipeline_id
        local = context.num_replicas_in_sync // pipelines
        block = np.int64(local * self.per_replica_batch())
        return data.filter(lambda epoch, position, image_id:
                           (position // block) % pipelines == index)

    def _prepare(self, epoch, position, image_id):
        import tensorflow as tf

        dtypes = [tf.as_dtype(dtype) for dtype in self.prepare[1]]
        outputs = tf.numpy_function(self._prepare_numpy, [epoch, position, image_id], dtypes,
                                    stateful=False, name="prepare_image")
        return epoch, position, image_id, tuple(outputs)

    def _prepare_numpy(self, epoch, position, image_id):
        rng = np.random.default_rng([self.seed, int(epoch), int(position), 7])
        arrays = self._call(self.prepare[0], int(image_id), rng, int(position), int(epoch))
        return _flat(arrays, self.prepare[1])

    def _load(self, epoch, position, image_id, prepared=()):
        import tensorflow as tf

        dtypes = [tf.as_dtype(dtype) for _, dtype in self.spec.values()]
        outputs = tf.numpy_function(self._load_numpy, [epoch, position, image_id, *prepared],
                                    dtypes, stateful=False, name="load_image")
        return self._structure(outputs, batched=False)

    def _load_numpy(self, epoch, position, image_id, *prepared):
        rng = np.random.default_rng([self.seed, int(epoch), int(position),
                                     8 if prepared else 7])
        extra = (prepared,) if prepared else ()
        arrays = self._call(self.load_fn, int(image_id), rng, int(position), int(epoch), *extra)
        return tuple(np.asarray(a, dtype) for a, (_, dtype) in zip(arrays, self.spec.values()))

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except Exception as error:  # noqa: BLE001  (kept for `reraise`)
            with self._lock:
                self.error = self.error or error
            raise

    def _batch_stage(self, *args):
        import tensorflow as tf

        values = list(args[0].values()) if isinstance(args[0], dict) else list(args)
        dtypes = [tf.as_dtype(dtype) for _, dtype in self.spec.values()]
        outputs = tf.numpy_function(self._batch_numpy, values, dtypes, stateful=True,
                                    name="batch_stage")
        return self._structure(outputs, batched=True)

    def _batch_numpy(self, *arrays):
        out = self.batch_fn(*arrays)
        return tuple(np.asarray(a, dtype) for a, (_, dtype) in zip(out, self.spec.values()))

    def _structure(self, outputs, batched):
        """Set the static shapes of `spec` and return a dict (or tuple) of tensors."""
        result = {}
        for tensor, (name, (shape, _)) in zip(outputs, self.spec.items()):
            shape = list(shape) if batched else list(shape[1:])
            if batched:
                shape[0] = self.per_replica_batch() if self.drop_remainder else None
            tensor.set_shape(shape)
            result[name] = tensor
        return tuple(result.values()) if self.as_tuple else result


def _flat(nested, dtypes):
    """(a, (b, c, ...)) -> (a, b, c, ...) as arrays of `dtypes`."""
    first, rest = nested
    return tuple(np.asarray(v, d) for v, d in zip((first, *rest), dtypes))


def fit_input(make, strategy=None):
    """(pipeline, what `model.fit` takes) for `make(input_context) -> TFPipeline`.

    Without a `tf.distribute` strategy: `make(None)` and its dataset. With one: the
    strategy's `distribute_datasets_from_function` (each input pipeline makes its share of
    every global batch, in per-replica batches), and this worker's pipeline.
    """
    if strategy is None:
        pipeline = make(None)
        return pipeline, pipeline.tf_dataset
    made = []

    def dataset_fn(input_context):
        made.append(make(input_context))
        return made[-1].tf_dataset

    data = strategy.distribute_datasets_from_function(dataset_fn)
    return made[0], data
