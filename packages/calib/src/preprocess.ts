/**
 * Image loading and preprocessing for calibration, as TPU-MLIR's `python/utils/preprocess.py`
 * does it for the preprocessing attributes that model_transform stores on `top.Input`
 * (resize_dims, keep_aspect_ratio, pad_type, pad_value, mean, scale, pixel_format, channel_format).
 *
 * The pipeline, step by step, and where it follows or departs from TPU-MLIR:
 *
 * 1. Decode. TPU-MLIR uses `cv2.imread` (IMREAD_GRAYSCALE for 1 channel, IMREAD_COLOR for 3,
 *    IMREAD_UNCHANGED for 4). We decode JPEG/PNG (and anything else libvips reads) with sharp,
 *    applying the EXIF orientation as cv2.imread does; BMP, which sharp cannot read, with our own
 *    decoder (uncompressed 1/4/8-bit palette, 24-bit, 32-bit incl. BI_BITFIELDS). Alpha is dropped
 *    unless pixel_format is rgba (cv2 IMREAD_COLOR drops it too); 16-bit samples are reduced to 8 bits
 *    with `>> 8` (as cv2 does). JPEG pixels equal OpenCV's (both libjpeg-turbo, ISLOW IDCT, fancy
 *    upsampling): the tests measure 0 LSB of difference on the shared images.
 *    Gray: cv2 asks the codec for gray (libjpeg returns the Y plane, libpng and cv2's BMP reader
 *    convert with 0.299/0.587/0.114 in fixed point). We convert RGB→gray with cv2's fixed-point
 *    formula (R·4899 + G·9617 + B·1868 + 8192) >> 14 after decoding to RGB, so gray from a color
 *    JPEG differs from cv2's Y plane where RGB clips (bus.jpg: 2% of pixels, up to 9 LSB); gray
 *    PNG/BMP files are read as they are (exact). Embedded ICC profiles are ignored, as cv2 does.
 * 2. Resize, on 8-bit pixels with an 8-bit result, exactly as `cv2.resize`:
 *    - "linear" (default; TPU-MLIR's `cv2.resize(img, (w, h))` = INTER_LINEAR): half-pixel centers,
 *      edge clamp, 11-bit fixed-point weights, OpenCV's vertical rounding; exact 2x downscale uses
 *      OpenCV's 2x2 average as cv2 does. No antialiasing: a large downscale samples 2x2 pixels per
 *      output pixel.
 *    - "area" (cv2 INTER_AREA; used by many reference pipelines, e.g. the shared test models):
 *      pixel-area averaging in float32 for downscales, OpenCV's area-flavoured bilinear for upscales.
 *    sharp's own resize is NOT used: libvips' "linear" kernel widens with the scale factor (an
 *    antialiased triangle filter, closer to INTER_AREA than to INTER_LINEAR), centers and rounds
 *    differently, so its output differs from cv2 by several LSB even at mild scales.
 *    keep_aspect_ratio: scale = min(W/w, H/h), resized to (int(w·scale), int(h·scale)), placed on a
 *    pad_value canvas of resize_dims. pad_type "center" (TPU-MLIR's default) pastes at
 *    ((W−w')//2, (H−h')//2), i.e. pads on all sides; any other pad_type ("normal") pastes at the
 *    top-left, padding bottom/right only (YOLO-style letterbox).
 * 3. Center crop to the input H,W when resize_dims is larger: start = h//2 − H//2 (TPU-MLIR's
 *    __center_crop). As TPU-MLIR's config() does, resize_dims smaller than the input dims are raised
 *    to them (max per axis), so no padding happens there. (TPU-MLIR crops NHWC data on the wrong
 *    axes; we crop H,W in both layouts.)
 * 4. Channel order and normalization: out = (x − mean[c]) · scale[c] in float32 arithmetic, with
 *    mean/scale in the channel order of pixel_format (after the BGR→RGB swap), as TPU-MLIR does.
 *    rgba: TPU-MLIR gets BGRA from cv2 for 4-channel files but RGBA from PIL for others and never
 *    reorders; we always give RGBA (alpha 255 where the file has none).
 * 5. Layout NCHW (planar) or NHWC (interleaved), float32, one image (batch dim not included).
 */
import { readFile } from "node:fs/promises";
import sharp, { type OutputInfo } from "sharp";
import { InputMismatchError, MissingFileError, ModelFormatError, QError, UsageError } from "@q/ir";

export type PixelFormat = "rgb" | "bgr" | "gray" | "rgba";
export type ChannelFormat = "nchw" | "nhwc";
/** cv2.resize interpolation: INTER_LINEAR (TPU-MLIR) or INTER_AREA. */
export type Interpolation = "linear" | "area";
/** TPU-MLIR pad_type: "center" pads around the image, "normal" (anything else) pads bottom/right. */
export type PadType = "center" | "normal";

export interface Preprocess {
  /** Model input shape, e.g. [1,3,H,W] (nchw) or [1,H,W,C] (nhwc); the last three dims are used. */
  inputShape: number[];
  /** Resize target [h, w] before the center crop; default = input H,W. Raised to at least H,W. */
  resizeDims?: [number, number];
  /** Letterbox: scale to fit resizeDims keeping the aspect ratio, pad with padValue. */
  keepAspectRatio?: boolean;
  /** Where the letterbox image sits: "center" (default, as TPU-MLIR) or "normal" (top-left). */
  padType?: PadType;
  /** Letterbox fill value in pixel units (0..255), before mean/scale. Default 0. */
  padValue?: number;
  /** Per-channel mean in the channel order of pixelFormat. Default 0. */
  mean?: number[];
  /** Per-channel scale in the channel order of pixelFormat: out = (x − mean)·scale. Default 1. */
  scale?: number[];
  /** Default "bgr" (TPU-MLIR's default). */
  pixelFormat?: PixelFormat;
  /** Default "nchw". */
  channelFormat?: ChannelFormat;
  /** Default "linear" = cv2 INTER_LINEAR, what TPU-MLIR uses. */
  interpolation?: Interpolation;
}

/** A decoded 8-bit image: interleaved HWC, channels in R,G,B(,A) order (1 = gray, 2 = gray+alpha). */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  data: Uint8Array;
}

/** The resolved geometry of a Preprocess. */
export interface PreprocessGeometry {
  channels: 1 | 3 | 4;
  height: number;
  width: number;
  resizeH: number;
  resizeW: number;
}

const CHANNELS: Record<PixelFormat, 1 | 3 | 4> = { gray: 1, rgb: 3, bgr: 3, rgba: 4 };

/** Check a Preprocess against its input shape and resolve the sizes (UsageError/InputMismatchError). */
export function resolveGeometry(pp: Preprocess): PreprocessGeometry {
  const pf = pp.pixelFormat ?? "bgr";
  const cf = pp.channelFormat ?? "nchw";
  if (!(pf in CHANNELS)) throw new UsageError(`pixel_format '${pf}' is not one of rgb, bgr, gray, rgba`);
  if (cf !== "nchw" && cf !== "nhwc") throw new UsageError(`channel_format '${cf as string}' is not nchw or nhwc`);
  const shape = pp.inputShape;
  if (shape.length < 3 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new InputMismatchError(`image input shape [${shape.join(",")}] must have at least 3 positive dims (C,H,W or H,W,C last)`);
  }
  const r = shape.length;
  const [c, h, w] = cf === "nchw" ? [shape[r - 3]!, shape[r - 2]!, shape[r - 1]!] : [shape[r - 1]!, shape[r - 3]!, shape[r - 2]!];
  const channels = CHANNELS[pf];
  if (c !== channels) {
    throw new InputMismatchError(
      `pixel_format ${pf} gives ${channels} channel(s) but input shape [${shape.join(",")}] (${cf}) has ${c}`,
    );
  }
  let resizeH = h;
  let resizeW = w;
  if (pp.resizeDims) {
    const [rh, rw] = pp.resizeDims;
    if (!Number.isInteger(rh) || !Number.isInteger(rw) || rh < 1 || rw < 1) {
      throw new UsageError(`resize_dims ${rh},${rw} must be two positive integers (h,w)`);
    }
    resizeH = Math.max(rh, h);
    resizeW = Math.max(rw, w);
  }
  for (const [name, v] of [["mean", pp.mean], ["scale", pp.scale]] as const) {
    if (v && v.length < channels) {
      throw new UsageError(`--${name} has ${v.length} value(s) but pixel_format ${pf} needs ${channels}`);
    }
    if (v && v.some((x) => !Number.isFinite(x))) throw new UsageError(`--${name} has a value that is not a finite number`);
  }
  return { channels, height: h, width: w, resizeH, resizeW };
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** True when the bytes start like a BMP file ("BM"). */
export function isBmp(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d;
}

/**
 * Decode an uncompressed Windows BMP: 1/4/8-bit palette, 24-bit BGR, 32-bit BGRX / BI_BITFIELDS
 * (16-bit 5-5-5/5-6-5 too). Bottom-up and top-down rows. RLE/JPEG/PNG-in-BMP are rejected.
 * Gray palettes give a 1-channel image; a 32-bit image with an alpha mask gives 4 channels.
 */
export function decodeBmp(bytes: Uint8Array, file?: string): RawImage {
  const fail = (msg: string): never => {
    throw new ModelFormatError(`corrupt or unsupported BMP: ${msg}`, file);
  };
  if (!isBmp(bytes) || bytes.length < 26) fail("not a BMP file (no 'BM' header)");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dataOffset = dv.getUint32(10, true);
  const dibSize = dv.getUint32(14, true);
  let width: number;
  let height: number;
  let bpp: number;
  let compression = 0;
  let clrUsed = 0;
  let paletteEntry = 4;
  if (dibSize === 12) {
    width = dv.getUint16(18, true);
    height = dv.getInt16(20, true);
    bpp = dv.getUint16(24, true);
    paletteEntry = 3;
  } else if (dibSize >= 40 && 14 + dibSize <= bytes.length) {
    width = dv.getInt32(18, true);
    height = dv.getInt32(22, true);
    bpp = dv.getUint16(28, true);
    compression = dv.getUint32(30, true);
    clrUsed = dv.getUint32(46, true);
  } else {
    return fail(`unknown or truncated header (size ${dibSize})`);
  }
  const topDown = height < 0;
  height = Math.abs(height);
  if (width <= 0 || height <= 0 || width > 65535 || height > 65535) fail(`bad size ${width}x${height}`);
  // Channel masks for 16/32-bit images.
  let masks: [number, number, number, number] | undefined;
  if (compression === 3 || compression === 6) {
    if (bpp !== 16 && bpp !== 32) fail(`BI_BITFIELDS with ${bpp} bits per pixel`);
    const at = dibSize >= 52 ? 54 : 14 + dibSize; // masks inside a V2+ header, else right after it
    const nMasks = dibSize >= 56 || compression === 6 ? 4 : 3;
    if (at + nMasks * 4 > bytes.length) fail("truncated colour masks");
    masks = [dv.getUint32(at, true), dv.getUint32(at + 4, true), dv.getUint32(at + 8, true), nMasks === 4 ? dv.getUint32(at + 12, true) : 0];
  } else if (compression !== 0) {
    fail(`compression ${compression} (RLE/JPEG/PNG) is not supported; save it as uncompressed BMP or PNG`);
  } else if (bpp === 16) {
    masks = [0x7c00, 0x03e0, 0x001f, 0];
  }
  if (![1, 4, 8, 16, 24, 32].includes(bpp)) fail(`${bpp} bits per pixel`);
  const rowBytes = Math.ceil((width * bpp) / 32) * 4;
  if (dataOffset + rowBytes * (height - 1) + Math.ceil((width * bpp) / 8) > bytes.length) {
    fail(`pixel data truncated (${width}x${height}, ${bpp} bpp needs ${rowBytes * height} bytes at offset ${dataOffset}, file has ${bytes.length})`);
  }
  const rowAt = (y: number): number => dataOffset + (topDown ? y : height - 1 - y) * rowBytes;

  if (bpp <= 8) {
    const nColors = clrUsed || 1 << bpp;
    const palAt = 14 + dibSize;
    if (palAt + nColors * paletteEntry > dataOffset || nColors > 256) fail("bad palette");
    const pal = new Uint8Array(nColors * 3);
    let gray = true;
    for (let i = 0; i < nColors; i++) {
      const b = bytes[palAt + i * paletteEntry]!;
      const g = bytes[palAt + i * paletteEntry + 1]!;
      const r = bytes[palAt + i * paletteEntry + 2]!;
      pal[i * 3] = r;
      pal[i * 3 + 1] = g;
      pal[i * 3 + 2] = b;
      if (r !== g || g !== b) gray = false;
    }
    const cn = gray ? 1 : 3;
    const out = new Uint8Array(width * height * cn);
    const perByte = 8 / bpp;
    const mask = (1 << bpp) - 1;
    for (let y = 0; y < height; y++) {
      const row = rowAt(y);
      for (let x = 0; x < width; x++) {
        const byte = bytes[row + Math.floor(x / perByte)]!;
        const shift = 8 - bpp * ((x % perByte) + 1);
        let idx = (byte >> shift) & mask;
        if (idx >= nColors) idx = nColors - 1;
        const o = (y * width + x) * cn;
        if (cn === 1) out[o] = pal[idx * 3]!;
        else {
          out[o] = pal[idx * 3]!;
          out[o + 1] = pal[idx * 3 + 1]!;
          out[o + 2] = pal[idx * 3 + 2]!;
        }
      }
    }
    return { width, height, channels: cn, data: out };
  }

  if (bpp === 24) {
    const out = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      let s = rowAt(y);
      let o = y * width * 3;
      for (let x = 0; x < width; x++, s += 3, o += 3) {
        out[o] = bytes[s + 2]!;
        out[o + 1] = bytes[s + 1]!;
        out[o + 2] = bytes[s]!;
      }
    }
    return { width, height, channels: 3, data: out };
  }

  if (bpp === 32 && !masks) {
    const out = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      let s = rowAt(y);
      let o = y * width * 3;
      for (let x = 0; x < width; x++, s += 4, o += 3) {
        out[o] = bytes[s + 2]!;
        out[o + 1] = bytes[s + 1]!;
        out[o + 2] = bytes[s]!;
      }
    }
    return { width, height, channels: 3, data: out };
  }

  // 16 or 32 bits with channel masks.
  const m = masks!;
  const chan = m.map((mk) => {
    if (mk === 0) return undefined;
    let shift = 0;
    while (((mk >>> shift) & 1) === 0) shift++;
    let bits = 0;
    while (((mk >>> (shift + bits)) & 1) === 1) bits++;
    return { mask: mk >>> 0, shift, max: 2 ** bits - 1 };
  });
  if (!chan[0] || !chan[1] || !chan[2]) fail("colour masks are missing");
  const cn = chan[3] ? 4 : 3;
  const out = new Uint8Array(width * height * cn);
  const bytesPP = bpp / 8;
  for (let y = 0; y < height; y++) {
    let s = rowAt(y);
    let o = y * width * cn;
    for (let x = 0; x < width; x++, s += bytesPP, o += cn) {
      const px = bytesPP === 4 ? dv.getUint32(s, true) : dv.getUint16(s, true);
      for (let k = 0; k < cn; k++) {
        const c = chan[k]!;
        const v = ((px & c.mask) >>> c.shift) >>> 0;
        out[o + k] = c.max === 255 ? v : Math.round((v * 255) / c.max);
      }
    }
  }
  return { width, height, channels: cn, data: out };
}

/**
 * Decode image bytes to 8-bit interleaved pixels (R,G,B order). BMP by our decoder, everything
 * else by sharp with EXIF auto-orientation. Corrupt data → ModelFormatError naming `file`.
 */
export async function decodeImage(bytes: Uint8Array, file?: string): Promise<RawImage> {
  if (bytes.length === 0) throw new ModelFormatError("cannot decode image: the file is empty", file);
  if (isBmp(bytes)) return decodeBmp(bytes, file);
  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await sharp(bytes, { failOn: "warning", ignoreIcc: true, limitInputPixels: 0x3fff * 0x3fff })
      .autoOrient()
      .raw()
      .toBuffer({ resolveWithObject: true }));
  } catch (e) {
    const detail = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new ModelFormatError(`cannot decode image (corrupt or unsupported format: ${detail})`, file);
  }
  const { width, height, channels } = info;
  const depth = (info as OutputInfo & { depth?: string }).depth ?? "uchar";
  if (channels < 1 || channels > 4) {
    throw new ModelFormatError(`cannot decode image: ${channels} channels (CMYK/multiband is not supported)`, file);
  }
  let px: Uint8Array;
  if (depth === "uchar" || depth === "char") {
    px = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else if (depth === "ushort") {
    const n = width * height * channels;
    px = new Uint8Array(n);
    for (let i = 0; i < n; i++) px[i] = data.readUInt16LE(i * 2) >> 8;
  } else {
    throw new ModelFormatError(`cannot decode image: unsupported sample format '${depth}'`, file);
  }
  return { width, height, channels: channels as 1 | 2 | 3 | 4, data: px };
}

/** Read and decode an image file (MissingFileError / ModelFormatError naming the path). */
export async function readImage(path: string): Promise<RawImage> {
  let bytes: Uint8Array;
  try {
    const b = await readFile(path);
    bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new MissingFileError(path, "image file");
    if (code === "EISDIR") throw new QError("E_IO", "cannot read image file: it is a directory", path);
    throw new QError("E_IO", `cannot read image file: ${e instanceof Error ? e.message : String(e)}`, path);
  }
  return decodeImage(bytes, path);
}

/**
 * Convert to the channel count a pixel format needs: 1 (gray), 3 (R,G,B) or 4 (R,G,B,A).
 * Gray from color uses cv2's fixed-point weights; alpha is dropped for 1 and 3.
 */
export function toChannels(img: RawImage, channels: 1 | 3 | 4): RawImage {
  const src = img.channels;
  if (src === channels) return img;
  const n = img.width * img.height;
  const s = img.data;
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) {
    let r: number, g: number, b: number, a = 255;
    if (src <= 2) {
      r = g = b = s[i * src]!;
      if (src === 2) a = s[i * 2 + 1]!;
    } else {
      r = s[i * src]!;
      g = s[i * src + 1]!;
      b = s[i * src + 2]!;
      if (src === 4) a = s[i * 4 + 3]!;
    }
    if (channels === 1) {
      out[i] = src <= 2 ? r : (r * 4899 + g * 9617 + b * 1868 + 8192) >> 14;
    } else {
      out[i * channels] = r;
      out[i * channels + 1] = g;
      out[i * channels + 2] = b;
      if (channels === 4) out[i * 4 + 3] = a;
    }
  }
  return { width: img.width, height: img.height, channels, data: out };
}

// ---------------------------------------------------------------------------------------------
// cv2.resize on 8-bit images

const f32 = Math.fround;
const COEF_BITS = 11;
const COEF_SCALE = 1 << COEF_BITS;

/** cvRound: round half to even (lrint in the default rounding mode). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
function satU8(x: number): number {
  const r = roundHalfEven(x);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}
function satI16(x: number): number {
  const r = roundHalfEven(x);
  return r < -32768 ? -32768 : r > 32767 ? 32767 : r;
}

/**
 * Resize 8-bit interleaved pixels exactly as OpenCV 4.x `cv2.resize` does for CV_8U with
 * INTER_LINEAR or INTER_AREA (no IPP/OpenCL): same coordinate mapping, fixed-point weights and
 * rounding. Verified bit-exact against OpenCV 4.6.
 */
export function resizeU8(img: RawImage, dw: number, dh: number, mode: Interpolation = "linear"): RawImage {
  const { width: sw, height: sh, channels: cn } = img;
  if (dw === sw && dh === sh) return img;
  if (dw < 1 || dh < 1) throw new RangeError(`resize to ${dw}x${dh}`);
  const invX = dw / sw;
  const invY = dh / sh;
  const scaleX = 1 / invX;
  const scaleY = 1 / invY;
  const iscaleX = Math.round(scaleX);
  const iscaleY = Math.round(scaleY);
  const areaFast = Math.abs(scaleX - iscaleX) < Number.EPSILON && Math.abs(scaleY - iscaleY) < Number.EPSILON;
  let interp = mode;
  if (interp === "linear" && areaFast && iscaleX === 2 && iscaleY === 2) interp = "area";
  if (interp === "area" && scaleX >= 1 && scaleY >= 1) {
    return areaFast ? resizeAreaFast(img, dw, dh, iscaleX, iscaleY) : resizeArea(img, dw, dh, scaleX, scaleY);
  }
  const areaMode = interp === "area";
  // Horizontal table.
  const xofs = new Int32Array(dw);
  const xa0 = new Int32Array(dw);
  const xa1 = new Int32Array(dw);
  for (let dx = 0; dx < dw; dx++) {
    let fx: number;
    let sx: number;
    if (!areaMode) {
      fx = f32((dx + 0.5) * scaleX - 0.5);
      sx = Math.floor(fx);
      fx = f32(fx - sx);
    } else {
      sx = Math.floor(dx * scaleX);
      fx = f32(dx + 1 - (sx + 1) * invX);
      fx = fx <= 0 ? 0 : f32(fx - Math.floor(fx));
    }
    if (sx < 0) {
      fx = 0;
      sx = 0;
    }
    if (sx >= sw - 1) {
      fx = 0;
      sx = sw - 1;
    }
    xofs[dx] = sx;
    xa0[dx] = satI16(f32(f32(1 - fx) * COEF_SCALE));
    xa1[dx] = satI16(f32(fx * COEF_SCALE));
  }
  // Horizontal pass into int rows (scale 2048), cached per source row.
  const rowLen = dw * cn;
  const hrow = (sy: number, D: Int32Array): void => {
    const S = img.data;
    const base = sy * sw * cn;
    for (let dx = 0; dx < dw; dx++) {
      const sx = xofs[dx]!;
      const a0 = xa0[dx]!;
      const a1 = xa1[dx]!;
      const p = base + sx * cn;
      const o = dx * cn;
      if (sx + 1 < sw) {
        for (let k = 0; k < cn; k++) D[o + k] = S[p + k]! * a0 + S[p + cn + k]! * a1;
      } else {
        for (let k = 0; k < cn; k++) D[o + k] = S[p + k]! * COEF_SCALE;
      }
    }
  };
  const out = new Uint8Array(dw * dh * cn);
  const rows = [new Int32Array(rowLen), new Int32Array(rowLen)];
  const rowIdx = [-1, -1];
  const getRow = (sy: number, slot: number): Int32Array => {
    // reuse a cached row when possible
    for (let k = 0; k < 2; k++) if (rowIdx[k] === sy) {
      if (k !== slot) {
        const t = rows[slot]!;
        rows[slot] = rows[k]!;
        rows[k] = t;
        const ti = rowIdx[slot]!;
        rowIdx[slot] = rowIdx[k]!;
        rowIdx[k] = ti;
      }
      return rows[slot]!;
    }
    hrow(sy, rows[slot]!);
    rowIdx[slot] = sy;
    return rows[slot]!;
  };
  for (let dy = 0; dy < dh; dy++) {
    let fy: number;
    let sy: number;
    if (!areaMode) {
      fy = f32((dy + 0.5) * scaleY - 0.5);
      sy = Math.floor(fy);
      fy = f32(fy - sy);
    } else {
      sy = Math.floor(dy * scaleY);
      fy = f32(dy + 1 - (sy + 1) * invY);
      fy = fy <= 0 ? 0 : f32(fy - Math.floor(fy));
    }
    const b0 = satI16(f32(f32(1 - fy) * COEF_SCALE));
    const b1 = satI16(f32(fy * COEF_SCALE));
    const sy0 = Math.min(Math.max(sy, 0), sh - 1);
    const sy1 = Math.min(Math.max(sy + 1, 0), sh - 1);
    const S0 = getRow(sy0, 0);
    const S1 = sy1 === sy0 ? S0 : getRow(sy1, 1);
    const o = dy * rowLen;
    for (let i = 0; i < rowLen; i++) {
      // VResizeLinear<uchar,int,short,FixedPtCast<...,22>>: ((b0*(S0>>4))>>16) + ((b1*(S1>>4))>>16) + 2 >> 2
      const v = (((b0 * (S0[i]! >> 4)) >> 16) + ((b1 * (S1[i]! >> 4)) >> 16) + 2) >> 2;
      out[o + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width: dw, height: dh, channels: cn, data: out };
}

/** cv2 INTER_AREA, integer scale factors (resizeAreaFast_Invoker). */
function resizeAreaFast(img: RawImage, dw: number, dh: number, kx: number, ky: number): RawImage {
  const { width: sw, height: sh, channels: cn } = img;
  const S = img.data;
  const out = new Uint8Array(dw * dh * cn);
  const area = kx * ky;
  const scale = f32(1 / area);
  const fast2 = kx === 2 && ky === 2 && (cn === 1 || cn === 3 || cn === 4);
  for (let dy = 0; dy < dh; dy++) {
    const sy0 = dy * ky;
    for (let dx = 0; dx < dw; dx++) {
      const sx0 = dx * kx;
      for (let k = 0; k < cn; k++) {
        let sum = 0;
        for (let yy = 0; yy < ky; yy++) {
          const sy = Math.min(sy0 + yy, sh - 1);
          for (let xx = 0; xx < kx; xx++) sum += S[(sy * sw + Math.min(sx0 + xx, sw - 1)) * cn + k]!;
        }
        out[(dy * dw + dx) * cn + k] = fast2 ? (sum + 2) >> 2 : satU8(f32(sum * scale));
      }
    }
  }
  return { width: dw, height: dh, channels: cn, data: out };
}

interface AreaTab {
  di: Int32Array;
  si: Int32Array;
  alpha: Float32Array;
  n: number;
}

/** computeResizeAreaTab from OpenCV (indices in pixels, not multiplied by cn). */
function areaTab(ssize: number, dsize: number, scale: number): AreaTab {
  const di = new Int32Array(ssize * 2 + 2);
  const si = new Int32Array(ssize * 2 + 2);
  const alpha = new Float32Array(ssize * 2 + 2);
  let k = 0;
  for (let dx = 0; dx < dsize; dx++) {
    const fsx1 = dx * scale;
    const fsx2 = fsx1 + scale;
    const cellWidth = Math.min(scale, ssize - fsx1);
    let sx1 = Math.ceil(fsx1);
    let sx2 = Math.floor(fsx2);
    sx2 = Math.min(sx2, ssize - 1);
    sx1 = Math.min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) {
      di[k] = dx;
      si[k] = sx1 - 1;
      alpha[k++] = (sx1 - fsx1) / cellWidth;
    }
    for (let sx = sx1; sx < sx2; sx++) {
      di[k] = dx;
      si[k] = sx;
      alpha[k++] = 1.0 / cellWidth;
    }
    if (fsx2 - sx2 > 1e-3) {
      di[k] = dx;
      si[k] = sx2;
      alpha[k++] = Math.min(Math.min(fsx2 - sx2, 1), cellWidth) / cellWidth;
    }
  }
  return { di, si, alpha, n: k };
}

/** cv2 INTER_AREA, non-integer downscale (ResizeArea_Invoker, float32 accumulation). */
function resizeArea(img: RawImage, dw: number, dh: number, scaleX: number, scaleY: number): RawImage {
  const { width: sw, height: sh, channels: cn } = img;
  const S = img.data;
  const xt = areaTab(sw, dw, scaleX);
  const yt = areaTab(sh, dh, scaleY);
  const W = dw * cn;
  const buf = new Float32Array(W);
  const sum = new Float32Array(W);
  const out = new Uint8Array(dh * W);
  let prevDy = yt.di[0]!;
  for (let j = 0; j < yt.n; j++) {
    const beta = yt.alpha[j]!;
    const dy = yt.di[j]!;
    const base = yt.si[j]! * sw * cn;
    buf.fill(0);
    for (let k = 0; k < xt.n; k++) {
      const dxn = xt.di[k]! * cn;
      const sxn = base + xt.si[k]! * cn;
      const a = xt.alpha[k]!;
      for (let c = 0; c < cn; c++) buf[dxn + c] = f32(buf[dxn + c]! + f32(S[sxn + c]! * a));
    }
    if (dy !== prevDy) {
      const o = prevDy * W;
      for (let i = 0; i < W; i++) {
        out[o + i] = satU8(sum[i]!);
        sum[i] = f32(beta * buf[i]!);
      }
      prevDy = dy;
    } else {
      for (let i = 0; i < W; i++) sum[i] = f32(sum[i]! + f32(beta * buf[i]!));
    }
  }
  const o = prevDy * W;
  for (let i = 0; i < W; i++) out[o + i] = satU8(sum[i]!);
  return { width: dw, height: dh, channels: cn, data: out };
}

/** TPU-MLIR ImageResizeTool.letterbox_resize. */
function letterbox(img: RawImage, h: number, w: number, padValue: number, padType: PadType, interp: Interpolation): RawImage {
  const scale = Math.min(w / img.width, h / img.height);
  const rw = Math.max(1, Math.trunc(img.width * scale));
  const rh = Math.max(1, Math.trunc(img.height * scale));
  const r = resizeU8(img, rw, rh, interp);
  const cn = img.channels;
  const out = new Uint8Array(w * h * cn).fill(padValue);
  const px = padType === "center" ? Math.trunc((w - rw) / 2) : 0;
  const py = padType === "center" ? Math.trunc((h - rh) / 2) : 0;
  for (let y = 0; y < rh; y++) {
    out.set(r.data.subarray(y * rw * cn, (y + 1) * rw * cn), ((py + y) * w + px) * cn);
  }
  return { width: w, height: h, channels: cn, data: out };
}

/**
 * Apply a Preprocess to a decoded image: channels, resize (or letterbox), center crop,
 * channel order, (x − mean)·scale, layout. Returns C·H·W float32 values.
 */
export function preprocessImage(img: RawImage, pp: Preprocess): Float32Array {
  const g = resolveGeometry(pp);
  const pf = pp.pixelFormat ?? "bgr";
  const interp = pp.interpolation ?? "linear";
  const padValue = pp.padValue ?? 0;
  if (!Number.isInteger(padValue) || padValue < 0 || padValue > 255) throw new UsageError(`pad_value ${padValue} must be an integer 0..255`);
  let im = toChannels(img, g.channels);
  im = pp.keepAspectRatio
    ? letterbox(im, g.resizeH, g.resizeW, padValue, pp.padType ?? "center", interp)
    : resizeU8(im, g.resizeW, g.resizeH, interp);
  const cn = g.channels;
  const H = g.height;
  const W = g.width;
  const y0 = (im.height >> 1) - (H >> 1);
  const x0 = (im.width >> 1) - (W >> 1);
  // channel c of the output takes source channel order[c] (source is R,G,B(,A) or gray)
  const order = pf === "bgr" ? [2, 1, 0] : pf === "rgb" ? [0, 1, 2] : pf === "rgba" ? [0, 1, 2, 3] : [0];
  const mean = new Float32Array(cn);
  const scale = new Float32Array(cn).fill(1);
  for (let c = 0; c < cn; c++) {
    if (pp.mean) mean[c] = pp.mean[c]!;
    if (pp.scale) scale[c] = pp.scale[c]!;
  }
  const nhwc = (pp.channelFormat ?? "nchw") === "nhwc";
  const out = new Float32Array(cn * H * W);
  const S = im.data;
  const sw = im.width;
  for (let c = 0; c < cn; c++) {
    const m = mean[c]!;
    const s = scale[c]!;
    const sc = order[c]!;
    for (let y = 0; y < H; y++) {
      const srow = ((y0 + y) * sw + x0) * cn + sc;
      for (let x = 0; x < W; x++) {
        const v = f32(f32(S[srow + x * cn]! - m) * s);
        out[nhwc ? (y * W + x) * cn + c : (c * H + y) * W + x] = v;
      }
    }
  }
  return out;
}

/** Load an image file and preprocess it (see the module comment). Returns C·H·W float32 values. */
export async function loadImage(path: string, pp: Preprocess): Promise<Float32Array> {
  resolveGeometry(pp); // fail on a bad config before reading anything
  return preprocessImage(await readImage(path), pp);
}

// ---------------------------------------------------------------------------------------------
// CLI string helpers

/** "0.485,0.456,0.406" → [0.485, 0.456, 0.406]. Brackets and spaces are allowed. */
export function parseFloatList(s: string, what = "value list"): number[] {
  const body = s.trim().replace(/^\[/, "").replace(/\]$/, "").trim();
  if (body === "") throw new UsageError(`${what} '${s}' is empty: give comma-separated numbers like 0.485,0.456,0.406`);
  return body.split(",").map((t) => {
    const v = Number(t.trim());
    if (t.trim() === "" || !Number.isFinite(v)) {
      throw new UsageError(`${what} '${s}': '${t.trim()}' is not a number (give comma-separated numbers like 0.485,0.456,0.406)`);
    }
    return v;
  });
}

/** "224,224" → [224, 224]; every value must be a non-negative integer. */
export function parseIntList(s: string, what = "integer list"): number[] {
  const v = parseFloatList(s, what);
  for (const x of v) if (!Number.isInteger(x) || x < 0) throw new UsageError(`${what} '${s}': ${x} is not a non-negative integer`);
  return v;
}

/**
 * `--input_shapes`: "[[1,3,224,224],[1,10]]" → [[1,3,224,224],[1,10]]. A single shape
 * "[1,3,224,224]" gives one entry. Dims must be positive integers.
 */
export function parseShapes(s: string): number[][] {
  const bad = (why: string): never => {
    throw new UsageError(`--input_shapes '${s}': ${why} (expected e.g. [[1,3,224,224],[1,10]])`);
  };
  const t = s.replace(/\s+/g, "");
  if (!/^[[\]0-9,]+$/.test(t)) bad("only digits, commas and brackets are allowed");
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return bad("unbalanced brackets or stray commas");
  }
  if (!Array.isArray(v) || v.length === 0) return bad("no shape given");
  const shapes: unknown[] = v.every((x) => typeof x === "number") ? [v] : v;
  return shapes.map((sh, i) => {
    if (!Array.isArray(sh) || sh.length === 0) return bad(`shape ${i} is not a non-empty list of dims`);
    return sh.map((d) => {
      if (typeof d !== "number" || !Number.isInteger(d) || d < 1) return bad(`shape ${i} has dim ${JSON.stringify(d)}, not a positive integer`);
      return d;
    });
  });
}
