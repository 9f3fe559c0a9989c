"""The biquad cascade's sample loop, emitted as LLVM IR: both channels of a sample in one SIMD
vector, and every section's state in registers.

numba compiles ``scipy.signal.sosfilt``'s transposed direct form II with one scalar operation
per channel, and keeps the state in the state array: it cannot know that the array does not
alias the signal, so every sample stores and reloads it. Five stereo sections then take about
31 cycles a frame, bound by the multiplies and the stores. Here the two channels share one
``<2 x double>`` multiply, add or subtract, and the state of up to ``MOST_SECTIONS`` sections
lives in SSA values (phi nodes) for the whole loop: about 16 cycles a frame.

Two tracks' cascades of as many sections can share the loop too, each in its own lanes with
its own coefficients (``<4 x double>`` for two stereo tracks): the loop is bound by the
latency of each section's recursion, not by its operations, so two stereo tracks take about
20 cycles a frame where one takes 16.

The bits stay scipy's: each lane does the same IEEE operations, in the same order, as
``sosfilt`` does on its channel, and the multiplies and adds carry no ``contract`` flag, so
LLVM never fuses them into FMAs (which would round differently on CPUs with and without
FMA). SIMD vector lanes round exactly as scalar operations do, on every x86-64 CPU.
"""

from __future__ import annotations

from typing import Any

from render.jit import intrinsic

LANES = {2: (1, 2), 3: (2, 4)}
"""The channel counts (SIMD lanes) emitted for each rank of ``sos``: one cascade (2-D) on
one or two channels, or two (3-D), each on half of the lanes: two mono or two stereo tracks
side by side."""
MOST_SECTIONS = 8
"""Sections per emitted loop. A longer cascade runs through the loop in parts of at most this
many sections, one part after another over the whole block, which changes no bit: a section
only ever sees the output of the section before it."""


@intrinsic
def cascade_part(
    typingctx: Any, sos: Any, first: Any, count: Any, x: Any, zi: Any, y: Any
) -> tuple[Any, Any]:
    """Sections ``first .. first + count - 1`` (``count`` from 1 to ``MOST_SECTIONS``) of
    ``sos`` on ``x`` (``float64[channels, n]``) into ``y`` (the same shape; may be ``x``),
    from and into the state ``zi[section, channel, 2]``: ``scipy.signal.sosfilt``'s
    operations on each channel. ``sos`` is ``float64[sections, 6]`` for every channel (1 or
    2 of them), or ``float64[2, sections, 6]``: ``sos[0]`` for the first half of the
    channels and ``sos[1]`` for the rest (2 or 4 channels). A numba intrinsic: it types the
    call, and ``_emit`` writes its code where a kernel calls it."""
    from numba import types

    arrays = (sos, x, zi, y)
    if not all(isinstance(a, types.Array) and a.dtype == types.float64 for a in arrays):
        return None
    if sos.ndim not in LANES or (x.ndim, zi.ndim, y.ndim) != (2, 3, 2):
        return None
    return types.void(sos, types.intp, types.intp, x, zi, y), _emit


def _emit(context: Any, builder: Any, signature: Any, args: Any) -> Any:
    """The code of ``cascade_part``: a switch on the channel count and the section count to
    one loop for each pair, each with its sections unrolled (a channel count not emitted
    for this rank of ``sos`` does nothing: ``eq._sosfilt`` checks the shapes)."""
    from llvmlite import ir

    first, count = args[1], args[2]
    sos, x, zi, y = (_Array(context, builder, signature.args[i], args[i]) for i in (0, 3, 4, 5))
    end = builder.append_basic_block("cascade.end")
    by_channels = builder.switch(x.shape[0], end)
    for channels in LANES[signature.args[0].ndim]:
        for_channels = builder.append_basic_block(f"cascade.channels{channels}")
        by_channels.add_case(ir.Constant(x.shape[0].type, channels), for_channels)
        builder.position_at_end(for_channels)
        by_count = builder.switch(count, end)
        for sections in range(1, MOST_SECTIONS + 1):
            case = builder.append_basic_block(f"cascade.{channels}x{sections}")
            by_count.add_case(ir.Constant(count.type, sections), case)
            builder.position_at_end(case)
            _Loop(builder, _Lanes(builder, channels), sections).emit(sos, first, x, zi, y)
            builder.branch(end)
    builder.position_at_end(end)
    return context.get_dummy_value()


class _Array:
    """A numba array argument inside the emitted code: its shape and element pointers."""

    def __init__(self, context: Any, builder: Any, kind: Any, value: Any) -> None:
        from numba.core import cgutils

        self._cgutils, self._context, self._builder, self._kind = cgutils, context, builder, kind
        self._array = context.make_array(kind)(context, builder, value)
        self.shape = cgutils.unpack_tuple(builder, self._array.shape, kind.ndim)
        self._strides = cgutils.unpack_tuple(builder, self._array.strides, kind.ndim)

    def pointer(self, *indices: Any) -> Any:
        """The address of element ``indices`` (LLVM integers), for this array's layout."""
        return self._cgutils.get_item_pointer2(
            self._context,
            self._builder,
            self._array.data,
            self.shape,
            self._strides,
            self._kind.layout,
            list(indices),
        )


class _Lanes:
    """One value per channel: a ``double`` for one channel, a ``<n x double>`` for more."""

    def __init__(self, builder: Any, channels: int) -> None:
        from llvmlite import ir

        self._ir, self._builder, self.channels = ir, builder, channels
        double = ir.DoubleType()
        self.type = double if channels == 1 else ir.VectorType(double, channels)

    def pack(self, values: list[Any]) -> Any:
        """The lanes holding ``values``, one per channel."""
        if self.channels == 1:
            return values[0]
        vector = self._ir.Constant(self.type, self._ir.Undefined)
        for lane, value in enumerate(values):
            vector = self._builder.insert_element(vector, value, self._index(lane))
        return vector

    def unpack(self, vector: Any) -> list[Any]:
        """The value of each channel."""
        if self.channels == 1:
            return [vector]
        return [self._builder.extract_element(vector, self._index(c)) for c in range(self.channels)]

    def _index(self, lane: int) -> Any:
        return self._ir.Constant(self._ir.IntType(32), lane)


class _Loop:
    """The sample loop of ``sections`` sections on ``lanes``, their state in phi nodes."""

    def __init__(self, builder: Any, lanes: _Lanes, sections: int) -> None:
        self._builder, self._lanes, self._sections = builder, lanes, sections

    def emit(self, sos: _Array, first: Any, x: _Array, zi: _Array, y: _Array) -> None:
        """The coefficients and the state loaded, the loop over ``x``'s samples, the state
        stored back (an empty signal loops no time and leaves the state as it was)."""
        from llvmlite import ir

        b, lanes = self._builder, self._lanes
        index = first.type

        def constant(value: int) -> Any:
            return ir.Constant(index, value)

        def spread(row: Any, column: int) -> Any:
            """A coefficient of section ``row`` in each lane: its group's."""
            if len(sos.shape) == 2:
                return lanes.pack([b.load(sos.pointer(row, constant(column)))] * lanes.channels)
            per_group = lanes.channels // 2
            return lanes.pack(
                [
                    b.load(sos.pointer(constant(c // per_group), row, constant(column)))
                    for c in range(lanes.channels)
                ]
            )

        rows = [b.add(first, constant(k)) for k in range(self._sections)]
        # b0, b1, b2, a1, a2 of each section (a0 is 1).
        coefficients = [[spread(row, column) for column in (0, 1, 2, 4, 5)] for row in rows]
        # z0 and z1 of each section in turn, each a pointer per channel.
        state_pointers = [
            [zi.pointer(row, constant(c), constant(j)) for c in range(lanes.channels)]
            for row in rows
            for j in (0, 1)
        ]
        initial = [
            lanes.pack([b.load(pointer) for pointer in pointers]) for pointers in state_pointers
        ]
        n = x.shape[1]
        entry = b.block
        loop = b.append_basic_block("cascade.loop")
        done = b.append_basic_block("cascade.done")
        b.cbranch(b.icmp_signed(">", n, constant(0)), loop, done)

        b.position_at_end(loop)
        i = b.phi(index)
        state = [b.phi(lanes.type) for _ in initial]
        value = lanes.pack([b.load(x.pointer(constant(c), i)) for c in range(lanes.channels)])
        updated = []
        for k, (b0, b1, b2, a1, a2) in enumerate(coefficients):
            # sosfilt's order: new = b0 x + z0; z0 = b1 x - a1 new + z1; z1 = b2 x - a2 new.
            new = b.fadd(b.fmul(b0, value), state[2 * k])
            updated.append(b.fadd(b.fsub(b.fmul(b1, value), b.fmul(a1, new)), state[2 * k + 1]))
            updated.append(b.fsub(b.fmul(b2, value), b.fmul(a2, new)))
            value = new
        for c, channel_value in enumerate(lanes.unpack(value)):
            b.store(channel_value, y.pointer(constant(c), i))
        following = b.add(i, constant(1))
        body = b.block
        i.add_incoming(constant(0), entry)
        i.add_incoming(following, body)
        for phi, start, step in zip(state, initial, updated, strict=True):
            phi.add_incoming(start, entry)
            phi.add_incoming(step, body)
        b.cbranch(b.icmp_signed("<", following, n), loop, done)

        b.position_at_end(done)
        final = [b.phi(lanes.type) for _ in initial]  # phis first: they open a block
        for phi, start, step in zip(final, initial, updated, strict=True):
            phi.add_incoming(start, entry)
            phi.add_incoming(step, body)
        for pointers, phi in zip(state_pointers, final, strict=True):
            for pointer, channel_value in zip(pointers, lanes.unpack(phi), strict=True):
                b.store(channel_value, pointer)
