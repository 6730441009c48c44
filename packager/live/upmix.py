"""Mono AAC frames made stereo without a second encode (pure, no I/O).

A TTS voice is mono, and the ladder's rungs are stereo (as in VOD, where ffmpeg duplicates
a mono source into both channels). Encoding the duplicated stereo costs the AAC encoder
more than twice the mono encode (its mid/side search runs on every band of every frame),
and for two identical channels it can at best code side = 0. So a live stream with a mono
source encodes each stereo rung once, in mono, and rewrites every frame's single channel
element (SCE) into a channel pair element (CPE) whose first channel is that SCE's channel
and whose second is all zero, with mid/side on for every band: the decoder computes
left = mid + side and right = mid - side, i.e. both channels equal to the mono signal,
bit for bit (ISO/IEC 14496-3 §4.6.8.1).

Syntax used (ISO/IEC 14496-3 §4.4.2): raw_data_block = elements ... ID_END, byte aligned;
single_channel_element = id(3) tag(4) individual_channel_stream(common_window = 0);
channel_pair_element = id(3) tag(4) common_window(1) [ics_info ms_mask_present(2) ...]
ics(ch 0) ics(ch 1); individual_channel_stream = global_gain(8) [ics_info] section_data
scale_factor_data pulse(1) tns(1) gain_control(1) spectral_data. The SCE's stream is copied
whole, only its ics_info moves before ms_mask_present (it becomes the common one), so the
rewrite needs no Huffman decoding: the element ends where ID_END starts, the last set bit
of the frame (ffmpeg's encoder writes nothing after the SCE but ID_END; a fill element
with its identification string comes first, every 256 frames, and is kept).

The mono encode runs without temporal noise shaping and perceptual noise substitution:
both are per-channel tools the second (zero) channel would not carry, and a decoder applies
TNS after mid/side and generates PNS noise only where mid/side is off, so either would make
the channels differ.
"""

from __future__ import annotations

ID_SCE, ID_CPE, ID_FIL, ID_END = 0, 1, 6, 7
EIGHT_SHORT_SEQUENCE = 2
MS_ALL_BANDS = 2  # ms_mask_present = 2: mid/side on in every band, no per-band flags


class UpmixError(ValueError):
    """A frame is not one mono element the rewrite understands."""


def mono_to_stereo(frame: bytes) -> bytes:
    """One raw AAC-LC frame (no ADTS header) holding one SCE, rewritten as one CPE with
    both channels equal to it."""
    n = len(frame) * 8
    v = int.from_bytes(frame, "big")
    if v == 0:
        raise UpmixError("empty AAC frame")

    def get(pos: int, width: int) -> int:
        return (v >> (n - pos - width)) & ((1 << width) - 1)

    pos = 0
    if get(0, 3) == ID_FIL:  # fill element (the encoder's identification): kept
        count = get(3, 4)
        pos = 7
        if count == 15:
            count += get(7, 8) - 1
            pos = 15
        pos += 8 * count
    fill_bits = pos
    if pos + 22 > n or get(pos, 3) != ID_SCE:
        raise UpmixError("the AAC frame does not hold one single channel element")
    tag = get(pos + 3, 4)
    global_gain = get(pos + 7, 8)
    info_at = pos + 15
    window_sequence = get(info_at + 1, 2)
    if get(info_at, 1):
        raise UpmixError("ics_reserved_bit is set")
    if window_sequence == EIGHT_SHORT_SEQUENCE:
        max_sfb = get(info_at + 4, 4)
        grouping = get(info_at + 8, 7)
        info_len = 4 + 4 + 7
        groups = 1 + 7 - bin(grouping).count("1")  # a 0 bit starts a new window group
        esc, len_bits = 7, 3
    else:
        max_sfb = get(info_at + 4, 6)
        if get(info_at + 10, 1):
            raise UpmixError("predictor data in an AAC-LC frame")
        info_len = 4 + 6 + 1
        groups, esc, len_bits = 1, 31, 5
    body_at = info_at + info_len
    trailing = (v & -v).bit_length() - 1  # zero bits of the final byte alignment
    end_at = n - trailing - 3
    if trailing > 7 or end_at < body_at or get(end_at, 3) != ID_END:
        raise UpmixError("the AAC frame does not end with ID_END after its element")
    body_len = end_at - body_at

    out = get(0, fill_bits) if fill_bits else 0
    out = (out << 3) | ID_CPE
    out = (out << 4) | tag
    out = (out << 1) | 1  # common_window
    out = (out << info_len) | get(info_at, info_len)
    out = (out << 2) | MS_ALL_BANDS
    out = (out << 8) | global_gain  # channel 0: the mono channel's stream, unchanged
    out = (out << body_len) | get(body_at, body_len)
    bits = fill_bits + 3 + 4 + 1 + info_len + 2 + 8 + body_len
    out = (out << 8) | global_gain  # channel 1: every band ZERO_HCB, no tools, no data
    bits += 8
    for _ in range(groups):
        if max_sfb:
            out = (out << 4) | 0  # sect_cb = ZERO_HCB, one section over max_sfb bands
            bits += 4
            left = max_sfb
            while left >= esc:
                out = (out << len_bits) | esc
                bits += len_bits
                left -= esc
            out = (out << len_bits) | left
            bits += len_bits
    out = (out << 3) | 0  # pulse_data_present, tns_data_present, gain_control_data_present
    out = (out << 3) | ID_END
    bits += 6
    pad = -bits % 8
    return (out << pad).to_bytes((bits + pad) // 8, "big")
