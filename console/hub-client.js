// Generated from sdk/src by `npm run bundle` in sdk/: edit the TypeScript there, not this file.
var __defProp = Object.defineProperty;
var __defNormalProp = (obj, key, value) => key in obj ? __defProp(obj, key, { enumerable: true, configurable: true, writable: true, value }) : obj[key] = value;
var __publicField = (obj, key, value) => __defNormalProp(obj, typeof key !== "symbol" ? key + "" : key, value);

// src/types.ts
function isReplyOrError(frame) {
  return Object.prototype.hasOwnProperty.call(frame, "id");
}

// node_modules/@msgpack/msgpack/dist.esm/utils/utf8.mjs
function utf8Count(str) {
  const strLength = str.length;
  let byteLength = 0;
  let pos = 0;
  while (pos < strLength) {
    let value = str.charCodeAt(pos++);
    if ((value & 4294967168) === 0) {
      byteLength++;
      continue;
    } else if ((value & 4294965248) === 0) {
      byteLength += 2;
    } else {
      if (value >= 55296 && value <= 56319) {
        if (pos < strLength) {
          const extra = str.charCodeAt(pos);
          if ((extra & 64512) === 56320) {
            ++pos;
            value = ((value & 1023) << 10) + (extra & 1023) + 65536;
          }
        }
      }
      if ((value & 4294901760) === 0) {
        byteLength += 3;
      } else {
        byteLength += 4;
      }
    }
  }
  return byteLength;
}
function utf8EncodeJs(str, output, outputOffset) {
  const strLength = str.length;
  let offset = outputOffset;
  let pos = 0;
  while (pos < strLength) {
    let value = str.charCodeAt(pos++);
    if ((value & 4294967168) === 0) {
      output[offset++] = value;
      continue;
    } else if ((value & 4294965248) === 0) {
      output[offset++] = value >> 6 & 31 | 192;
    } else {
      if (value >= 55296 && value <= 56319) {
        if (pos < strLength) {
          const extra = str.charCodeAt(pos);
          if ((extra & 64512) === 56320) {
            ++pos;
            value = ((value & 1023) << 10) + (extra & 1023) + 65536;
          }
        }
      }
      if ((value & 4294901760) === 0) {
        output[offset++] = value >> 12 & 15 | 224;
        output[offset++] = value >> 6 & 63 | 128;
      } else {
        output[offset++] = value >> 18 & 7 | 240;
        output[offset++] = value >> 12 & 63 | 128;
        output[offset++] = value >> 6 & 63 | 128;
      }
    }
    output[offset++] = value & 63 | 128;
  }
}
var sharedTextEncoder = new TextEncoder();
var TEXT_ENCODER_THRESHOLD = 50;
function utf8EncodeTE(str, output, outputOffset) {
  sharedTextEncoder.encodeInto(str, output.subarray(outputOffset));
}
function utf8Encode(str, output, outputOffset) {
  if (str.length > TEXT_ENCODER_THRESHOLD) {
    utf8EncodeTE(str, output, outputOffset);
  } else {
    utf8EncodeJs(str, output, outputOffset);
  }
}
var CHUNK_SIZE = 4096;
function utf8DecodeJs(bytes, inputOffset, byteLength) {
  let offset = inputOffset;
  const end = offset + byteLength;
  const units = [];
  let result = "";
  while (offset < end) {
    const byte1 = bytes[offset++];
    if ((byte1 & 128) === 0) {
      units.push(byte1);
    } else if ((byte1 & 224) === 192) {
      const byte2 = bytes[offset++] & 63;
      units.push((byte1 & 31) << 6 | byte2);
    } else if ((byte1 & 240) === 224) {
      const byte2 = bytes[offset++] & 63;
      const byte3 = bytes[offset++] & 63;
      units.push((byte1 & 31) << 12 | byte2 << 6 | byte3);
    } else if ((byte1 & 248) === 240) {
      const byte2 = bytes[offset++] & 63;
      const byte3 = bytes[offset++] & 63;
      const byte4 = bytes[offset++] & 63;
      let unit = (byte1 & 7) << 18 | byte2 << 12 | byte3 << 6 | byte4;
      if (unit > 65535) {
        unit -= 65536;
        units.push(unit >>> 10 & 1023 | 55296);
        unit = 56320 | unit & 1023;
      }
      units.push(unit);
    } else {
      units.push(byte1);
    }
    if (units.length >= CHUNK_SIZE) {
      result += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  if (units.length > 0) {
    result += String.fromCharCode(...units);
  }
  return result;
}
var sharedTextDecoder = new TextDecoder();
var TEXT_DECODER_THRESHOLD = 200;
function utf8DecodeTD(bytes, inputOffset, byteLength) {
  const stringBytes = bytes.subarray(inputOffset, inputOffset + byteLength);
  return sharedTextDecoder.decode(stringBytes);
}
function utf8Decode(bytes, inputOffset, byteLength) {
  if (byteLength > TEXT_DECODER_THRESHOLD) {
    return utf8DecodeTD(bytes, inputOffset, byteLength);
  } else {
    return utf8DecodeJs(bytes, inputOffset, byteLength);
  }
}

// node_modules/@msgpack/msgpack/dist.esm/ExtData.mjs
var ExtData = class {
  constructor(type, data) {
    __publicField(this, "type");
    __publicField(this, "data");
    this.type = type;
    this.data = data;
  }
};

// node_modules/@msgpack/msgpack/dist.esm/DecodeError.mjs
var DecodeError = class _DecodeError extends Error {
  constructor(message) {
    super(message);
    const proto = Object.create(_DecodeError.prototype);
    Object.setPrototypeOf(this, proto);
    Object.defineProperty(this, "name", {
      configurable: true,
      enumerable: false,
      value: _DecodeError.name
    });
  }
};

// node_modules/@msgpack/msgpack/dist.esm/utils/int.mjs
var UINT32_MAX = 4294967295;
function setUint64(view, offset, value) {
  const high = value / 4294967296;
  const low = value;
  view.setUint32(offset, high);
  view.setUint32(offset + 4, low);
}
function setInt64(view, offset, value) {
  const high = Math.floor(value / 4294967296);
  const low = value;
  view.setUint32(offset, high);
  view.setUint32(offset + 4, low);
}
function getInt64(view, offset) {
  const high = view.getInt32(offset);
  const low = view.getUint32(offset + 4);
  return high * 4294967296 + low;
}
function getUint64(view, offset) {
  const high = view.getUint32(offset);
  const low = view.getUint32(offset + 4);
  return high * 4294967296 + low;
}

// node_modules/@msgpack/msgpack/dist.esm/timestamp.mjs
var EXT_TIMESTAMP = -1;
var TIMESTAMP32_MAX_SEC = 4294967296 - 1;
var TIMESTAMP64_MAX_SEC = 17179869184 - 1;
function encodeTimeSpecToTimestamp({ sec, nsec }) {
  if (sec >= 0 && nsec >= 0 && sec <= TIMESTAMP64_MAX_SEC) {
    if (nsec === 0 && sec <= TIMESTAMP32_MAX_SEC) {
      const rv = new Uint8Array(4);
      const view = new DataView(rv.buffer);
      view.setUint32(0, sec);
      return rv;
    } else {
      const secHigh = sec / 4294967296;
      const secLow = sec & 4294967295;
      const rv = new Uint8Array(8);
      const view = new DataView(rv.buffer);
      view.setUint32(0, nsec << 2 | secHigh & 3);
      view.setUint32(4, secLow);
      return rv;
    }
  } else {
    const rv = new Uint8Array(12);
    const view = new DataView(rv.buffer);
    view.setUint32(0, nsec);
    setInt64(view, 4, sec);
    return rv;
  }
}
function encodeDateToTimeSpec(date) {
  const msec = date.getTime();
  const sec = Math.floor(msec / 1e3);
  const nsec = (msec - sec * 1e3) * 1e6;
  const nsecInSec = Math.floor(nsec / 1e9);
  return {
    sec: sec + nsecInSec,
    nsec: nsec - nsecInSec * 1e9
  };
}
function encodeTimestampExtension(object) {
  if (object instanceof Date) {
    const timeSpec = encodeDateToTimeSpec(object);
    return encodeTimeSpecToTimestamp(timeSpec);
  } else {
    return null;
  }
}
function decodeTimestampToTimeSpec(data) {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  switch (data.byteLength) {
    case 4: {
      const sec = view.getUint32(0);
      const nsec = 0;
      return { sec, nsec };
    }
    case 8: {
      const nsec30AndSecHigh2 = view.getUint32(0);
      const secLow32 = view.getUint32(4);
      const sec = (nsec30AndSecHigh2 & 3) * 4294967296 + secLow32;
      const nsec = nsec30AndSecHigh2 >>> 2;
      return { sec, nsec };
    }
    case 12: {
      const sec = getInt64(view, 4);
      const nsec = view.getUint32(0);
      return { sec, nsec };
    }
    default:
      throw new DecodeError(`Unrecognized data size for timestamp (expected 4, 8, or 12): ${data.length}`);
  }
}
function decodeTimestampExtension(data) {
  const timeSpec = decodeTimestampToTimeSpec(data);
  return new Date(timeSpec.sec * 1e3 + timeSpec.nsec / 1e6);
}
var timestampExtension = {
  type: EXT_TIMESTAMP,
  encode: encodeTimestampExtension,
  decode: decodeTimestampExtension
};

// node_modules/@msgpack/msgpack/dist.esm/ExtensionCodec.mjs
var _ExtensionCodec = class _ExtensionCodec {
  constructor() {
    // ensures ExtensionCodecType<X> matches ExtensionCodec<X>
    // this will make type errors a lot more clear
    // eslint-disable-next-line @typescript-eslint/naming-convention
    __publicField(this, "__brand");
    // built-in extensions
    __publicField(this, "builtInEncoders", []);
    __publicField(this, "builtInDecoders", []);
    // custom extensions
    __publicField(this, "encoders", []);
    __publicField(this, "decoders", []);
    this.register(timestampExtension);
  }
  register({ type, encode: encode2, decode: decode2 }) {
    if (type >= 0) {
      this.encoders[type] = encode2;
      this.decoders[type] = decode2;
    } else {
      const index = -1 - type;
      this.builtInEncoders[index] = encode2;
      this.builtInDecoders[index] = decode2;
    }
  }
  tryToEncode(object, context) {
    for (let i = 0; i < this.builtInEncoders.length; i++) {
      const encodeExt = this.builtInEncoders[i];
      if (encodeExt != null) {
        const data = encodeExt(object, context);
        if (data != null) {
          const type = -1 - i;
          return new ExtData(type, data);
        }
      }
    }
    for (let i = 0; i < this.encoders.length; i++) {
      const encodeExt = this.encoders[i];
      if (encodeExt != null) {
        const data = encodeExt(object, context);
        if (data != null) {
          const type = i;
          return new ExtData(type, data);
        }
      }
    }
    if (object instanceof ExtData) {
      return object;
    }
    return null;
  }
  decode(data, type, context) {
    const decodeExt = type < 0 ? this.builtInDecoders[-1 - type] : this.decoders[type];
    if (decodeExt) {
      return decodeExt(data, type, context);
    } else {
      return new ExtData(type, data);
    }
  }
};
__publicField(_ExtensionCodec, "defaultCodec", new _ExtensionCodec());
var ExtensionCodec = _ExtensionCodec;

// node_modules/@msgpack/msgpack/dist.esm/utils/typedArrays.mjs
function isArrayBufferLike(buffer) {
  return buffer instanceof ArrayBuffer || typeof SharedArrayBuffer !== "undefined" && buffer instanceof SharedArrayBuffer;
}
function ensureUint8Array(buffer) {
  if (buffer instanceof Uint8Array) {
    return buffer;
  } else if (ArrayBuffer.isView(buffer)) {
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } else if (isArrayBufferLike(buffer)) {
    return new Uint8Array(buffer);
  } else {
    return Uint8Array.from(buffer);
  }
}

// node_modules/@msgpack/msgpack/dist.esm/Encoder.mjs
var DEFAULT_MAX_DEPTH = 100;
var DEFAULT_INITIAL_BUFFER_SIZE = 2048;
var Encoder = class _Encoder {
  constructor(options) {
    __publicField(this, "extensionCodec");
    __publicField(this, "context");
    __publicField(this, "useBigInt64");
    __publicField(this, "maxDepth");
    __publicField(this, "initialBufferSize");
    __publicField(this, "sortKeys");
    __publicField(this, "forceFloat32");
    __publicField(this, "ignoreUndefined");
    __publicField(this, "forceIntegerToFloat");
    __publicField(this, "pos");
    __publicField(this, "view");
    __publicField(this, "bytes");
    __publicField(this, "entered", false);
    this.extensionCodec = options?.extensionCodec ?? ExtensionCodec.defaultCodec;
    this.context = options?.context;
    this.useBigInt64 = options?.useBigInt64 ?? false;
    this.maxDepth = options?.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.initialBufferSize = options?.initialBufferSize ?? DEFAULT_INITIAL_BUFFER_SIZE;
    this.sortKeys = options?.sortKeys ?? false;
    this.forceFloat32 = options?.forceFloat32 ?? false;
    this.ignoreUndefined = options?.ignoreUndefined ?? false;
    this.forceIntegerToFloat = options?.forceIntegerToFloat ?? false;
    this.pos = 0;
    this.view = new DataView(new ArrayBuffer(this.initialBufferSize));
    this.bytes = new Uint8Array(this.view.buffer);
  }
  clone() {
    return new _Encoder({
      extensionCodec: this.extensionCodec,
      context: this.context,
      useBigInt64: this.useBigInt64,
      maxDepth: this.maxDepth,
      initialBufferSize: this.initialBufferSize,
      sortKeys: this.sortKeys,
      forceFloat32: this.forceFloat32,
      ignoreUndefined: this.ignoreUndefined,
      forceIntegerToFloat: this.forceIntegerToFloat
    });
  }
  reinitializeState() {
    this.pos = 0;
  }
  /**
   * This is almost equivalent to {@link Encoder#encode}, but it returns an reference of the encoder's internal buffer and thus much faster than {@link Encoder#encode}.
   *
   * @returns Encodes the object and returns a shared reference the encoder's internal buffer.
   */
  encodeSharedRef(object) {
    if (this.entered) {
      const instance = this.clone();
      return instance.encodeSharedRef(object);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.doEncode(object, 1);
      return this.bytes.subarray(0, this.pos);
    } finally {
      this.entered = false;
    }
  }
  /**
   * @returns Encodes the object and returns a copy of the encoder's internal buffer.
   */
  encode(object) {
    if (this.entered) {
      const instance = this.clone();
      return instance.encode(object);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.doEncode(object, 1);
      return this.bytes.slice(0, this.pos);
    } finally {
      this.entered = false;
    }
  }
  doEncode(object, depth) {
    if (depth > this.maxDepth) {
      throw new Error(`Too deep objects in depth ${depth}`);
    }
    if (object == null) {
      this.encodeNil();
    } else if (typeof object === "boolean") {
      this.encodeBoolean(object);
    } else if (typeof object === "number") {
      if (!this.forceIntegerToFloat) {
        this.encodeNumber(object);
      } else {
        this.encodeNumberAsFloat(object);
      }
    } else if (typeof object === "string") {
      this.encodeString(object);
    } else if (this.useBigInt64 && typeof object === "bigint") {
      this.encodeBigInt64(object);
    } else {
      this.encodeObject(object, depth);
    }
  }
  ensureBufferSizeToWrite(sizeToWrite) {
    const requiredSize = this.pos + sizeToWrite;
    if (this.view.byteLength < requiredSize) {
      this.resizeBuffer(requiredSize * 2);
    }
  }
  resizeBuffer(newSize) {
    const newBuffer = new ArrayBuffer(newSize);
    const newBytes = new Uint8Array(newBuffer);
    const newView = new DataView(newBuffer);
    newBytes.set(this.bytes);
    this.view = newView;
    this.bytes = newBytes;
  }
  encodeNil() {
    this.writeU8(192);
  }
  encodeBoolean(object) {
    if (object === false) {
      this.writeU8(194);
    } else {
      this.writeU8(195);
    }
  }
  encodeNumber(object) {
    if (!this.forceIntegerToFloat && Number.isSafeInteger(object)) {
      if (object >= 0) {
        if (object < 128) {
          this.writeU8(object);
        } else if (object < 256) {
          this.writeU8(204);
          this.writeU8(object);
        } else if (object < 65536) {
          this.writeU8(205);
          this.writeU16(object);
        } else if (object < 4294967296) {
          this.writeU8(206);
          this.writeU32(object);
        } else if (!this.useBigInt64) {
          this.writeU8(207);
          this.writeU64(object);
        } else {
          this.encodeNumberAsFloat(object);
        }
      } else {
        if (object >= -32) {
          this.writeU8(224 | object + 32);
        } else if (object >= -128) {
          this.writeU8(208);
          this.writeI8(object);
        } else if (object >= -32768) {
          this.writeU8(209);
          this.writeI16(object);
        } else if (object >= -2147483648) {
          this.writeU8(210);
          this.writeI32(object);
        } else if (!this.useBigInt64) {
          this.writeU8(211);
          this.writeI64(object);
        } else {
          this.encodeNumberAsFloat(object);
        }
      }
    } else {
      this.encodeNumberAsFloat(object);
    }
  }
  encodeNumberAsFloat(object) {
    if (this.forceFloat32) {
      this.writeU8(202);
      this.writeF32(object);
    } else {
      this.writeU8(203);
      this.writeF64(object);
    }
  }
  encodeBigInt64(object) {
    if (object >= BigInt(0)) {
      this.writeU8(207);
      this.writeBigUint64(object);
    } else {
      this.writeU8(211);
      this.writeBigInt64(object);
    }
  }
  writeStringHeader(byteLength) {
    if (byteLength < 32) {
      this.writeU8(160 + byteLength);
    } else if (byteLength < 256) {
      this.writeU8(217);
      this.writeU8(byteLength);
    } else if (byteLength < 65536) {
      this.writeU8(218);
      this.writeU16(byteLength);
    } else if (byteLength < 4294967296) {
      this.writeU8(219);
      this.writeU32(byteLength);
    } else {
      throw new Error(`Too long string: ${byteLength} bytes in UTF-8`);
    }
  }
  encodeString(object) {
    const maxHeaderSize = 1 + 4;
    const byteLength = utf8Count(object);
    this.ensureBufferSizeToWrite(maxHeaderSize + byteLength);
    this.writeStringHeader(byteLength);
    utf8Encode(object, this.bytes, this.pos);
    this.pos += byteLength;
  }
  encodeObject(object, depth) {
    const ext = this.extensionCodec.tryToEncode(object, this.context);
    if (ext != null) {
      this.encodeExtension(ext);
    } else if (Array.isArray(object)) {
      this.encodeArray(object, depth);
    } else if (ArrayBuffer.isView(object)) {
      this.encodeBinary(object);
    } else if (typeof object === "object") {
      this.encodeMap(object, depth);
    } else {
      throw new Error(`Unrecognized object: ${Object.prototype.toString.apply(object)}`);
    }
  }
  encodeBinary(object) {
    const size = object.byteLength;
    if (size < 256) {
      this.writeU8(196);
      this.writeU8(size);
    } else if (size < 65536) {
      this.writeU8(197);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(198);
      this.writeU32(size);
    } else {
      throw new Error(`Too large binary: ${size}`);
    }
    const bytes = ensureUint8Array(object);
    this.writeU8a(bytes);
  }
  encodeArray(object, depth) {
    const size = object.length;
    if (size < 16) {
      this.writeU8(144 + size);
    } else if (size < 65536) {
      this.writeU8(220);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(221);
      this.writeU32(size);
    } else {
      throw new Error(`Too large array: ${size}`);
    }
    for (const item of object) {
      this.doEncode(item, depth + 1);
    }
  }
  countWithoutUndefined(object, keys) {
    let count = 0;
    for (const key of keys) {
      if (object[key] !== void 0) {
        count++;
      }
    }
    return count;
  }
  encodeMap(object, depth) {
    const keys = Object.keys(object);
    if (this.sortKeys) {
      keys.sort();
    }
    const size = this.ignoreUndefined ? this.countWithoutUndefined(object, keys) : keys.length;
    if (size < 16) {
      this.writeU8(128 + size);
    } else if (size < 65536) {
      this.writeU8(222);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(223);
      this.writeU32(size);
    } else {
      throw new Error(`Too large map object: ${size}`);
    }
    for (const key of keys) {
      const value = object[key];
      if (!(this.ignoreUndefined && value === void 0)) {
        this.encodeString(key);
        this.doEncode(value, depth + 1);
      }
    }
  }
  encodeExtension(ext) {
    if (typeof ext.data === "function") {
      const data = ext.data(this.pos + 6);
      const size2 = data.length;
      if (size2 >= 4294967296) {
        throw new Error(`Too large extension object: ${size2}`);
      }
      this.writeU8(201);
      this.writeU32(size2);
      this.writeI8(ext.type);
      this.writeU8a(data);
      return;
    }
    const size = ext.data.length;
    if (size === 1) {
      this.writeU8(212);
    } else if (size === 2) {
      this.writeU8(213);
    } else if (size === 4) {
      this.writeU8(214);
    } else if (size === 8) {
      this.writeU8(215);
    } else if (size === 16) {
      this.writeU8(216);
    } else if (size < 256) {
      this.writeU8(199);
      this.writeU8(size);
    } else if (size < 65536) {
      this.writeU8(200);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(201);
      this.writeU32(size);
    } else {
      throw new Error(`Too large extension object: ${size}`);
    }
    this.writeI8(ext.type);
    this.writeU8a(ext.data);
  }
  writeU8(value) {
    this.ensureBufferSizeToWrite(1);
    this.view.setUint8(this.pos, value);
    this.pos++;
  }
  writeU8a(values) {
    const size = values.length;
    this.ensureBufferSizeToWrite(size);
    this.bytes.set(values, this.pos);
    this.pos += size;
  }
  writeI8(value) {
    this.ensureBufferSizeToWrite(1);
    this.view.setInt8(this.pos, value);
    this.pos++;
  }
  writeU16(value) {
    this.ensureBufferSizeToWrite(2);
    this.view.setUint16(this.pos, value);
    this.pos += 2;
  }
  writeI16(value) {
    this.ensureBufferSizeToWrite(2);
    this.view.setInt16(this.pos, value);
    this.pos += 2;
  }
  writeU32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setUint32(this.pos, value);
    this.pos += 4;
  }
  writeI32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setInt32(this.pos, value);
    this.pos += 4;
  }
  writeF32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setFloat32(this.pos, value);
    this.pos += 4;
  }
  writeF64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setFloat64(this.pos, value);
    this.pos += 8;
  }
  writeU64(value) {
    this.ensureBufferSizeToWrite(8);
    setUint64(this.view, this.pos, value);
    this.pos += 8;
  }
  writeI64(value) {
    this.ensureBufferSizeToWrite(8);
    setInt64(this.view, this.pos, value);
    this.pos += 8;
  }
  writeBigUint64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setBigUint64(this.pos, value);
    this.pos += 8;
  }
  writeBigInt64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setBigInt64(this.pos, value);
    this.pos += 8;
  }
};

// node_modules/@msgpack/msgpack/dist.esm/encode.mjs
function encode(value, options) {
  const encoder = new Encoder(options);
  return encoder.encodeSharedRef(value);
}

// node_modules/@msgpack/msgpack/dist.esm/utils/prettyByte.mjs
function prettyByte(byte) {
  return `${byte < 0 ? "-" : ""}0x${Math.abs(byte).toString(16).padStart(2, "0")}`;
}

// node_modules/@msgpack/msgpack/dist.esm/CachedKeyDecoder.mjs
var DEFAULT_MAX_KEY_LENGTH = 16;
var DEFAULT_MAX_LENGTH_PER_KEY = 16;
var CachedKeyDecoder = class {
  constructor(maxKeyLength = DEFAULT_MAX_KEY_LENGTH, maxLengthPerKey = DEFAULT_MAX_LENGTH_PER_KEY) {
    __publicField(this, "hit", 0);
    __publicField(this, "miss", 0);
    __publicField(this, "caches");
    __publicField(this, "maxKeyLength");
    __publicField(this, "maxLengthPerKey");
    this.maxKeyLength = maxKeyLength;
    this.maxLengthPerKey = maxLengthPerKey;
    this.caches = [];
    for (let i = 0; i < this.maxKeyLength; i++) {
      this.caches.push([]);
    }
  }
  canBeCached(byteLength) {
    return byteLength > 0 && byteLength <= this.maxKeyLength;
  }
  find(bytes, inputOffset, byteLength) {
    const records = this.caches[byteLength - 1];
    FIND_CHUNK: for (const record of records) {
      const recordBytes = record.bytes;
      for (let j = 0; j < byteLength; j++) {
        if (recordBytes[j] !== bytes[inputOffset + j]) {
          continue FIND_CHUNK;
        }
      }
      return record.str;
    }
    return null;
  }
  store(bytes, value) {
    const records = this.caches[bytes.length - 1];
    const record = { bytes, str: value };
    if (records.length >= this.maxLengthPerKey) {
      records[Math.random() * records.length | 0] = record;
    } else {
      records.push(record);
    }
  }
  decode(bytes, inputOffset, byteLength) {
    const cachedValue = this.find(bytes, inputOffset, byteLength);
    if (cachedValue != null) {
      this.hit++;
      return cachedValue;
    }
    this.miss++;
    const str = utf8DecodeJs(bytes, inputOffset, byteLength);
    const slicedCopyOfBytes = Uint8Array.prototype.slice.call(bytes, inputOffset, inputOffset + byteLength);
    this.store(slicedCopyOfBytes, str);
    return str;
  }
};

// node_modules/@msgpack/msgpack/dist.esm/Decoder.mjs
var STATE_ARRAY = "array";
var STATE_MAP_KEY = "map_key";
var STATE_MAP_VALUE = "map_value";
var mapKeyConverter = (key) => {
  if (typeof key === "string" || typeof key === "number") {
    return key;
  }
  throw new DecodeError("The type of key must be string or number but " + typeof key);
};
var StackPool = class {
  constructor() {
    __publicField(this, "stack", []);
    __publicField(this, "stackHeadPosition", -1);
  }
  get length() {
    return this.stackHeadPosition + 1;
  }
  top() {
    return this.stack[this.stackHeadPosition];
  }
  pushArrayState(size) {
    const state = this.getUninitializedStateFromPool();
    state.type = STATE_ARRAY;
    state.position = 0;
    state.size = size;
    state.array = new Array(size);
  }
  pushMapState(size) {
    const state = this.getUninitializedStateFromPool();
    state.type = STATE_MAP_KEY;
    state.readCount = 0;
    state.size = size;
    state.map = {};
  }
  getUninitializedStateFromPool() {
    this.stackHeadPosition++;
    if (this.stackHeadPosition === this.stack.length) {
      const partialState = {
        type: void 0,
        size: 0,
        array: void 0,
        position: 0,
        readCount: 0,
        map: void 0,
        key: null
      };
      this.stack.push(partialState);
    }
    return this.stack[this.stackHeadPosition];
  }
  release(state) {
    const topStackState = this.stack[this.stackHeadPosition];
    if (topStackState !== state) {
      throw new Error("Invalid stack state. Released state is not on top of the stack.");
    }
    if (state.type === STATE_ARRAY) {
      const partialState = state;
      partialState.size = 0;
      partialState.array = void 0;
      partialState.position = 0;
      partialState.type = void 0;
    }
    if (state.type === STATE_MAP_KEY || state.type === STATE_MAP_VALUE) {
      const partialState = state;
      partialState.size = 0;
      partialState.map = void 0;
      partialState.readCount = 0;
      partialState.type = void 0;
    }
    this.stackHeadPosition--;
  }
  reset() {
    this.stack.length = 0;
    this.stackHeadPosition = -1;
  }
};
var HEAD_BYTE_REQUIRED = -1;
var EMPTY_VIEW = new DataView(new ArrayBuffer(0));
var EMPTY_BYTES = new Uint8Array(EMPTY_VIEW.buffer);
try {
  EMPTY_VIEW.getInt8(0);
} catch (e) {
  if (!(e instanceof RangeError)) {
    throw new Error("This module is not supported in the current JavaScript engine because DataView does not throw RangeError on out-of-bounds access");
  }
}
var MORE_DATA = new RangeError("Insufficient data");
var sharedCachedKeyDecoder = new CachedKeyDecoder();
var Decoder = class _Decoder {
  constructor(options) {
    __publicField(this, "extensionCodec");
    __publicField(this, "context");
    __publicField(this, "useBigInt64");
    __publicField(this, "rawStrings");
    __publicField(this, "maxStrLength");
    __publicField(this, "maxBinLength");
    __publicField(this, "maxArrayLength");
    __publicField(this, "maxMapLength");
    __publicField(this, "maxExtLength");
    __publicField(this, "keyDecoder");
    __publicField(this, "mapKeyConverter");
    __publicField(this, "totalPos", 0);
    __publicField(this, "pos", 0);
    __publicField(this, "view", EMPTY_VIEW);
    __publicField(this, "bytes", EMPTY_BYTES);
    __publicField(this, "headByte", HEAD_BYTE_REQUIRED);
    __publicField(this, "stack", new StackPool());
    __publicField(this, "entered", false);
    this.extensionCodec = options?.extensionCodec ?? ExtensionCodec.defaultCodec;
    this.context = options?.context;
    this.useBigInt64 = options?.useBigInt64 ?? false;
    this.rawStrings = options?.rawStrings ?? false;
    this.maxStrLength = options?.maxStrLength ?? UINT32_MAX;
    this.maxBinLength = options?.maxBinLength ?? UINT32_MAX;
    this.maxArrayLength = options?.maxArrayLength ?? UINT32_MAX;
    this.maxMapLength = options?.maxMapLength ?? UINT32_MAX;
    this.maxExtLength = options?.maxExtLength ?? UINT32_MAX;
    this.keyDecoder = options?.keyDecoder !== void 0 ? options.keyDecoder : sharedCachedKeyDecoder;
    this.mapKeyConverter = options?.mapKeyConverter ?? mapKeyConverter;
  }
  clone() {
    return new _Decoder({
      extensionCodec: this.extensionCodec,
      context: this.context,
      useBigInt64: this.useBigInt64,
      rawStrings: this.rawStrings,
      maxStrLength: this.maxStrLength,
      maxBinLength: this.maxBinLength,
      maxArrayLength: this.maxArrayLength,
      maxMapLength: this.maxMapLength,
      maxExtLength: this.maxExtLength,
      keyDecoder: this.keyDecoder
    });
  }
  reinitializeState() {
    this.totalPos = 0;
    this.headByte = HEAD_BYTE_REQUIRED;
    this.stack.reset();
  }
  setBuffer(buffer) {
    const bytes = ensureUint8Array(buffer);
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }
  appendBuffer(buffer) {
    if (this.headByte === HEAD_BYTE_REQUIRED && !this.hasRemaining(1)) {
      this.setBuffer(buffer);
    } else {
      const remainingData = this.bytes.subarray(this.pos);
      const newData = ensureUint8Array(buffer);
      const newBuffer = new Uint8Array(remainingData.length + newData.length);
      newBuffer.set(remainingData);
      newBuffer.set(newData, remainingData.length);
      this.setBuffer(newBuffer);
    }
  }
  hasRemaining(size) {
    return this.view.byteLength - this.pos >= size;
  }
  createExtraByteError(posToShow) {
    const { view, pos } = this;
    return new RangeError(`Extra ${view.byteLength - pos} of ${view.byteLength} byte(s) found at buffer[${posToShow}]`);
  }
  /**
   * @throws {@link DecodeError}
   * @throws {@link RangeError}
   */
  decode(buffer) {
    if (this.entered) {
      const instance = this.clone();
      return instance.decode(buffer);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.setBuffer(buffer);
      const object = this.doDecodeSync();
      if (this.hasRemaining(1)) {
        throw this.createExtraByteError(this.pos);
      }
      return object;
    } finally {
      this.entered = false;
    }
  }
  *decodeMulti(buffer) {
    if (this.entered) {
      const instance = this.clone();
      yield* instance.decodeMulti(buffer);
      return;
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.setBuffer(buffer);
      while (this.hasRemaining(1)) {
        yield this.doDecodeSync();
      }
    } finally {
      this.entered = false;
    }
  }
  async decodeAsync(stream) {
    if (this.entered) {
      const instance = this.clone();
      return instance.decodeAsync(stream);
    }
    try {
      this.entered = true;
      let decoded = false;
      let object;
      for await (const buffer of stream) {
        if (decoded) {
          this.entered = false;
          throw this.createExtraByteError(this.totalPos);
        }
        this.appendBuffer(buffer);
        try {
          object = this.doDecodeSync();
          decoded = true;
        } catch (e) {
          if (!(e instanceof RangeError)) {
            throw e;
          }
        }
        this.totalPos += this.pos;
      }
      if (decoded) {
        if (this.hasRemaining(1)) {
          throw this.createExtraByteError(this.totalPos);
        }
        return object;
      }
      const { headByte, pos, totalPos } = this;
      throw new RangeError(`Insufficient data in parsing ${prettyByte(headByte)} at ${totalPos} (${pos} in the current buffer)`);
    } finally {
      this.entered = false;
    }
  }
  decodeArrayStream(stream) {
    return this.decodeMultiAsync(stream, true);
  }
  decodeStream(stream) {
    return this.decodeMultiAsync(stream, false);
  }
  async *decodeMultiAsync(stream, isArray) {
    if (this.entered) {
      const instance = this.clone();
      yield* instance.decodeMultiAsync(stream, isArray);
      return;
    }
    try {
      this.entered = true;
      let isArrayHeaderRequired = isArray;
      let arrayItemsLeft = -1;
      for await (const buffer of stream) {
        if (isArray && arrayItemsLeft === 0) {
          throw this.createExtraByteError(this.totalPos);
        }
        this.appendBuffer(buffer);
        if (isArrayHeaderRequired) {
          arrayItemsLeft = this.readArraySize();
          isArrayHeaderRequired = false;
          this.complete();
        }
        try {
          while (true) {
            yield this.doDecodeSync();
            if (--arrayItemsLeft === 0) {
              break;
            }
          }
        } catch (e) {
          if (!(e instanceof RangeError)) {
            throw e;
          }
        }
        this.totalPos += this.pos;
      }
    } finally {
      this.entered = false;
    }
  }
  doDecodeSync() {
    DECODE: while (true) {
      const headByte = this.readHeadByte();
      let object;
      if (headByte >= 224) {
        object = headByte - 256;
      } else if (headByte < 192) {
        if (headByte < 128) {
          object = headByte;
        } else if (headByte < 144) {
          const size = headByte - 128;
          if (size !== 0) {
            this.pushMapState(size);
            this.complete();
            continue DECODE;
          } else {
            object = {};
          }
        } else if (headByte < 160) {
          const size = headByte - 144;
          if (size !== 0) {
            this.pushArrayState(size);
            this.complete();
            continue DECODE;
          } else {
            object = [];
          }
        } else {
          const byteLength = headByte - 160;
          object = this.decodeString(byteLength, 0);
        }
      } else if (headByte === 192) {
        object = null;
      } else if (headByte === 194) {
        object = false;
      } else if (headByte === 195) {
        object = true;
      } else if (headByte === 202) {
        object = this.readF32();
      } else if (headByte === 203) {
        object = this.readF64();
      } else if (headByte === 204) {
        object = this.readU8();
      } else if (headByte === 205) {
        object = this.readU16();
      } else if (headByte === 206) {
        object = this.readU32();
      } else if (headByte === 207) {
        if (this.useBigInt64) {
          object = this.readU64AsBigInt();
        } else {
          object = this.readU64();
        }
      } else if (headByte === 208) {
        object = this.readI8();
      } else if (headByte === 209) {
        object = this.readI16();
      } else if (headByte === 210) {
        object = this.readI32();
      } else if (headByte === 211) {
        if (this.useBigInt64) {
          object = this.readI64AsBigInt();
        } else {
          object = this.readI64();
        }
      } else if (headByte === 217) {
        const byteLength = this.lookU8();
        object = this.decodeString(byteLength, 1);
      } else if (headByte === 218) {
        const byteLength = this.lookU16();
        object = this.decodeString(byteLength, 2);
      } else if (headByte === 219) {
        const byteLength = this.lookU32();
        object = this.decodeString(byteLength, 4);
      } else if (headByte === 220) {
        const size = this.readU16();
        if (size !== 0) {
          this.pushArrayState(size);
          this.complete();
          continue DECODE;
        } else {
          object = [];
        }
      } else if (headByte === 221) {
        const size = this.readU32();
        if (size !== 0) {
          this.pushArrayState(size);
          this.complete();
          continue DECODE;
        } else {
          object = [];
        }
      } else if (headByte === 222) {
        const size = this.readU16();
        if (size !== 0) {
          this.pushMapState(size);
          this.complete();
          continue DECODE;
        } else {
          object = {};
        }
      } else if (headByte === 223) {
        const size = this.readU32();
        if (size !== 0) {
          this.pushMapState(size);
          this.complete();
          continue DECODE;
        } else {
          object = {};
        }
      } else if (headByte === 196) {
        const size = this.lookU8();
        object = this.decodeBinary(size, 1);
      } else if (headByte === 197) {
        const size = this.lookU16();
        object = this.decodeBinary(size, 2);
      } else if (headByte === 198) {
        const size = this.lookU32();
        object = this.decodeBinary(size, 4);
      } else if (headByte === 212) {
        object = this.decodeExtension(1, 0);
      } else if (headByte === 213) {
        object = this.decodeExtension(2, 0);
      } else if (headByte === 214) {
        object = this.decodeExtension(4, 0);
      } else if (headByte === 215) {
        object = this.decodeExtension(8, 0);
      } else if (headByte === 216) {
        object = this.decodeExtension(16, 0);
      } else if (headByte === 199) {
        const size = this.lookU8();
        object = this.decodeExtension(size, 1);
      } else if (headByte === 200) {
        const size = this.lookU16();
        object = this.decodeExtension(size, 2);
      } else if (headByte === 201) {
        const size = this.lookU32();
        object = this.decodeExtension(size, 4);
      } else {
        throw new DecodeError(`Unrecognized type byte: ${prettyByte(headByte)}`);
      }
      this.complete();
      const stack = this.stack;
      while (stack.length > 0) {
        const state = stack.top();
        if (state.type === STATE_ARRAY) {
          state.array[state.position] = object;
          state.position++;
          if (state.position === state.size) {
            object = state.array;
            stack.release(state);
          } else {
            continue DECODE;
          }
        } else if (state.type === STATE_MAP_KEY) {
          if (object === "__proto__") {
            throw new DecodeError("The key __proto__ is not allowed");
          }
          state.key = this.mapKeyConverter(object);
          state.type = STATE_MAP_VALUE;
          continue DECODE;
        } else {
          state.map[state.key] = object;
          state.readCount++;
          if (state.readCount === state.size) {
            object = state.map;
            stack.release(state);
          } else {
            state.key = null;
            state.type = STATE_MAP_KEY;
            continue DECODE;
          }
        }
      }
      return object;
    }
  }
  readHeadByte() {
    if (this.headByte === HEAD_BYTE_REQUIRED) {
      this.headByte = this.readU8();
    }
    return this.headByte;
  }
  complete() {
    this.headByte = HEAD_BYTE_REQUIRED;
  }
  readArraySize() {
    const headByte = this.readHeadByte();
    switch (headByte) {
      case 220:
        return this.readU16();
      case 221:
        return this.readU32();
      default: {
        if (headByte < 160) {
          return headByte - 144;
        } else {
          throw new DecodeError(`Unrecognized array type byte: ${prettyByte(headByte)}`);
        }
      }
    }
  }
  pushMapState(size) {
    if (size > this.maxMapLength) {
      throw new DecodeError(`Max length exceeded: map length (${size}) > maxMapLengthLength (${this.maxMapLength})`);
    }
    this.stack.pushMapState(size);
  }
  pushArrayState(size) {
    if (size > this.maxArrayLength) {
      throw new DecodeError(`Max length exceeded: array length (${size}) > maxArrayLength (${this.maxArrayLength})`);
    }
    this.stack.pushArrayState(size);
  }
  decodeString(byteLength, headerOffset) {
    if (!this.rawStrings || this.stateIsMapKey()) {
      return this.decodeUtf8String(byteLength, headerOffset);
    }
    return this.decodeBinary(byteLength, headerOffset);
  }
  /**
   * @throws {@link RangeError}
   */
  decodeUtf8String(byteLength, headerOffset) {
    if (byteLength > this.maxStrLength) {
      throw new DecodeError(`Max length exceeded: UTF-8 byte length (${byteLength}) > maxStrLength (${this.maxStrLength})`);
    }
    if (this.bytes.byteLength < this.pos + headerOffset + byteLength) {
      throw MORE_DATA;
    }
    const offset = this.pos + headerOffset;
    let object;
    if (this.stateIsMapKey() && this.keyDecoder?.canBeCached(byteLength)) {
      object = this.keyDecoder.decode(this.bytes, offset, byteLength);
    } else {
      object = utf8Decode(this.bytes, offset, byteLength);
    }
    this.pos += headerOffset + byteLength;
    return object;
  }
  stateIsMapKey() {
    if (this.stack.length > 0) {
      const state = this.stack.top();
      return state.type === STATE_MAP_KEY;
    }
    return false;
  }
  /**
   * @throws {@link RangeError}
   */
  decodeBinary(byteLength, headOffset) {
    if (byteLength > this.maxBinLength) {
      throw new DecodeError(`Max length exceeded: bin length (${byteLength}) > maxBinLength (${this.maxBinLength})`);
    }
    if (!this.hasRemaining(byteLength + headOffset)) {
      throw MORE_DATA;
    }
    const offset = this.pos + headOffset;
    const object = this.bytes.subarray(offset, offset + byteLength);
    this.pos += headOffset + byteLength;
    return object;
  }
  decodeExtension(size, headOffset) {
    if (size > this.maxExtLength) {
      throw new DecodeError(`Max length exceeded: ext length (${size}) > maxExtLength (${this.maxExtLength})`);
    }
    const extType = this.view.getInt8(this.pos + headOffset);
    const data = this.decodeBinary(
      size,
      headOffset + 1
      /* extType */
    );
    return this.extensionCodec.decode(data, extType, this.context);
  }
  lookU8() {
    return this.view.getUint8(this.pos);
  }
  lookU16() {
    return this.view.getUint16(this.pos);
  }
  lookU32() {
    return this.view.getUint32(this.pos);
  }
  readU8() {
    const value = this.view.getUint8(this.pos);
    this.pos++;
    return value;
  }
  readI8() {
    const value = this.view.getInt8(this.pos);
    this.pos++;
    return value;
  }
  readU16() {
    const value = this.view.getUint16(this.pos);
    this.pos += 2;
    return value;
  }
  readI16() {
    const value = this.view.getInt16(this.pos);
    this.pos += 2;
    return value;
  }
  readU32() {
    const value = this.view.getUint32(this.pos);
    this.pos += 4;
    return value;
  }
  readI32() {
    const value = this.view.getInt32(this.pos);
    this.pos += 4;
    return value;
  }
  readU64() {
    const value = getUint64(this.view, this.pos);
    this.pos += 8;
    return value;
  }
  readI64() {
    const value = getInt64(this.view, this.pos);
    this.pos += 8;
    return value;
  }
  readU64AsBigInt() {
    const value = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return value;
  }
  readI64AsBigInt() {
    const value = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return value;
  }
  readF32() {
    const value = this.view.getFloat32(this.pos);
    this.pos += 4;
    return value;
  }
  readF64() {
    const value = this.view.getFloat64(this.pos);
    this.pos += 8;
    return value;
  }
};

// node_modules/@msgpack/msgpack/dist.esm/decode.mjs
function decode(buffer, options) {
  const decoder = new Decoder(options);
  return decoder.decode(buffer);
}

// src/codec.ts
var SUBPROTOCOL = {
  json: "anapars.v1.json",
  msgpack: "anapars.v1.msgpack"
};
function bytesOf(data) {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}
function asMap(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError("a frame is not a map");
  }
  return value;
}
var jsonCodec = {
  encoding: "json",
  subprotocol: SUBPROTOCOL.json,
  encode: (frame) => JSON.stringify(frame),
  decode(data) {
    const text = typeof data === "string" ? data : new TextDecoder().decode(bytesOf(data));
    return asMap(JSON.parse(text));
  }
};
var msgpackCodec = {
  encoding: "msgpack",
  subprotocol: SUBPROTOCOL.msgpack,
  encode: (frame) => encode(frame, { ignoreUndefined: true }),
  decode(data) {
    if (typeof data === "string") throw new TypeError("a MessagePack frame arrived as text");
    return asMap(decode(bytesOf(data), { useBigInt64: false }));
  }
};
function codecFor(encoding) {
  return encoding === "msgpack" ? msgpackCodec : jsonCodec;
}

// src/backoff.ts
var NORMAL_BACKOFF = { base: 500, cap: 3e4 };
var LONG_BACKOFF = { base: 3e4, cap: 3e5 };
function backoffCeiling(attempt, policy = NORMAL_BACKOFF) {
  const exp = Math.min(Math.max(0, Math.floor(attempt)), 52);
  return Math.min(policy.cap, policy.base * 2 ** exp);
}
function backoffDelay(attempt, options = {}) {
  const random = options.random ?? Math.random;
  const delay = Math.floor(random() * backoffCeiling(attempt, options.policy));
  return Math.max(delay, options.retryAfterMs ?? 0);
}

// src/errors.ts
var HubError = class extends Error {
  constructor(frame) {
    super(`${frame.code}: ${frame.message}`);
    __publicField(this, "code");
    __publicField(this, "retryAfterMs");
    this.name = "HubError";
    this.code = frame.code;
    this.retryAfterMs = frame.retry_after_ms;
  }
};
var ConnectionLost = class extends Error {
  constructor(message, closeCode, code = "disconnected") {
    super(message);
    /** The close code that ended the socket, when there was one. */
    __publicField(this, "closeCode");
    /**
     * `timeout` when no reply came in time, `disconnected` otherwise: beside `HubError`'s codes, so
     * that an app can switch on `code` alone.
     */
    __publicField(this, "code");
    this.name = "ConnectionLost";
    this.closeCode = closeCode;
    this.code = code;
  }
};

// src/outbox.ts
var MemoryOutboxStore = class {
  constructor() {
    __publicField(this, "entries", /* @__PURE__ */ new Map());
  }
  async load() {
    return [...this.entries.values()].map((e) => ({ ...e }));
  }
  async put(entry) {
    this.entries.set(entry.client_msg_id, { ...entry });
  }
  async delete(clientMsgId) {
    this.entries.delete(clientMsgId);
  }
};
var FINAL = /* @__PURE__ */ new Set([
  "bad_request",
  "empty_body",
  "too_large",
  "forbidden",
  "not_found",
  "wrong_state",
  "unknown_type",
  "unauthorized"
]);
var MAX_IN_FLIGHT = 32;
function newClientMsgId(random) {
  const bytes = new Uint8Array(16);
  const c = globalThis.crypto;
  if (!random && c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor((random ?? Math.random)() * 256);
  bytes[6] = bytes[6] & 15 | 64;
  bytes[8] = bytes[8] & 63 | 128;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
var Outbox = class {
  constructor(store = new MemoryOutboxStore(), random = Math.random) {
    this.store = store;
    this.random = random;
    __publicField(this, "entries", /* @__PURE__ */ new Map());
    __publicField(this, "nextOrder", 1);
    __publicField(this, "inFlight", 0);
    /** Per group (ticket or open): no try before this time, after a hint or a backoff. */
    __publicField(this, "notBefore", /* @__PURE__ */ new Map());
    __publicField(this, "timer");
    __publicField(this, "listeners", /* @__PURE__ */ new Set());
    __publicField(this, "waiters", /* @__PURE__ */ new Map());
    __publicField(this, "transport");
    __publicField(this, "loaded");
  }
  /** Reads the stored entries once; entries in flight when the app died are ready again. */
  load() {
    this.loaded ?? (this.loaded = this.store.load().then((list) => {
      for (const e of list) {
        if (e.state === "in_flight") e.state = "ready";
        this.entries.set(e.client_msg_id, e);
        this.nextOrder = Math.max(this.nextOrder, e.order + 1);
      }
    }));
    return this.loaded;
  }
  attach(transport) {
    this.transport = transport;
  }
  onDelivery(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  /** Entries not yet acknowledged, in creation order (failed ones included until removed). */
  list() {
    return [...this.entries.values()].sort((a, b) => a.order - b.order).map((e) => ({ ...e }));
  }
  /** Resolves at the entry's next final state, `sent` or `failed`. */
  settled(clientMsgId) {
    return new Promise((resolve) => {
      const list = this.waiters.get(clientMsgId) ?? [];
      list.push(resolve);
      this.waiters.set(clientMsgId, list);
    });
  }
  /** Queues a `ticket.open`; its first message will be seq 2. */
  async open(subject, body, attachments, meta) {
    return this.add({ kind: "open", subject, body, ...extras(attachments, meta) });
  }
  /**
   * Queues a `ticket.send`. `ticket` is a ticket id, or the `client_msg_id` of an open still in
   * the outbox: the send then waits for that open's reply.
   */
  async send(ticket, body, attachments, meta) {
    return this.add({ kind: "send", ...ticket, body, ...extras(attachments, meta) });
  }
  async add(fields) {
    await this.load();
    const entry = {
      client_msg_id: newClientMsgId(),
      order: this.nextOrder++,
      created_at: Date.now(),
      tries: 0,
      internal_errors: 0,
      state: "ready",
      ...fields
    };
    await this.store.put(entry);
    this.entries.set(entry.client_msg_id, entry);
    this.emit({ state: "pending", client_msg_id: entry.client_msg_id, ...entry.ticket_id ? { ticket_id: entry.ticket_id } : {} });
    this.flush();
    return { ...entry };
  }
  /** Removes a failed entry (the person deleted or edited the message). */
  async remove(clientMsgId) {
    this.entries.delete(clientMsgId);
    await this.store.delete(clientMsgId);
  }
  /**
   * An own event arrived (during a resume or live): the message was stored before the reply got
   * lost, so it completes its entry as a `ticket.send.ok` would.
   */
  async ownEvent(event) {
    if (event.kind !== "message" || event.client_msg_id === void 0) return;
    const entry = this.entries.get(event.client_msg_id);
    if (!entry || entry.state === "in_flight" || entry.kind !== "send") return;
    if (entry.ticket_id !== event.ticket_id) return;
    await this.complete(entry, { seq: event.seq, duplicate: true });
  }
  /** Drops every entry of a ticket that no longer exists (`ticket.deleted`, `not_found`). */
  async dropTicket(ticketId) {
    for (const e of [...this.entries.values()]) if (e.ticket_id === ticketId) await this.remove(e.client_msg_id);
  }
  /** Sends what may go now: per group one entry at a time, in creation order. */
  flush() {
    const transport = this.transport;
    if (!transport) return;
    const now = Date.now();
    let wake = Infinity;
    const seen = /* @__PURE__ */ new Set();
    for (const entry of this.list()) {
      const key = groupOf(entry);
      if (seen.has(key)) continue;
      seen.add(key);
      if (entry.state === "in_flight" || entry.state === "failed") continue;
      if (this.inFlight >= MAX_IN_FLIGHT) break;
      if (entry.kind === "send" && entry.ticket_id === void 0) continue;
      const at = this.notBefore.get(key) ?? 0;
      if (at > now) {
        wake = Math.min(wake, at);
        continue;
      }
      if (!transport.canSend(entry.ticket_id)) continue;
      void this.sendOne(this.entries.get(entry.client_msg_id), key);
    }
    if (wake !== Infinity) this.wakeAt(wake);
  }
  wakeAt(at) {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = void 0;
      this.flush();
    }, Math.max(0, at - Date.now()));
  }
  /** Stops the retry timer (the client is shut down); entries stay. */
  stop() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = void 0;
  }
  async sendOne(entry, key) {
    const transport = this.transport;
    entry.state = "in_flight";
    entry.tries += 1;
    this.inFlight += 1;
    try {
      if (entry.kind === "open") {
        const ticket = await transport.sendOpen(entry);
        this.inFlight -= 1;
        await this.opened(entry, ticket);
      } else {
        const ok = await transport.sendMessage(entry);
        this.inFlight -= 1;
        await this.complete(entry, ok);
      }
    } catch (err) {
      this.inFlight -= 1;
      await this.failedTry(entry, key, err);
    }
    this.flush();
  }
  async opened(entry, ticket) {
    for (const e of this.entries.values()) {
      if (e.open_ref === entry.client_msg_id) {
        e.ticket_id = ticket.id;
        await this.store.put(e);
      }
    }
    await this.remove(entry.client_msg_id);
    this.settle({ state: "sent", client_msg_id: entry.client_msg_id, ticket_id: ticket.id, seq: 2, duplicate: false, ticket, entry: { ...entry } });
  }
  async complete(entry, ok) {
    await this.remove(entry.client_msg_id);
    this.settle({ state: "sent", client_msg_id: entry.client_msg_id, ticket_id: entry.ticket_id, seq: ok.seq, duplicate: ok.duplicate, entry: { ...entry } });
  }
  async failedTry(entry, key, err) {
    if (err instanceof ConnectionLost) {
      if (err.closeCode === 1009) return this.fail(entry, "message_too_big", "the frame is over max_frame_hard_bytes");
      entry.state = "ready";
      return;
    }
    if (!(err instanceof HubError)) {
      entry.state = "ready";
      this.notBefore.set(key, Date.now() + backoffDelay(entry.tries, { random: this.random }));
      return;
    }
    const code = err.code;
    if (code === "overloaded" || code === "rate_limited") {
      entry.state = "ready";
      this.notBefore.set(key, Date.now() + (err.retryAfterMs ?? backoffDelay(entry.tries, { random: this.random })));
    } else if (code === "unavailable" || code === "internal") {
      if (code === "internal") entry.internal_errors += 1;
      if (entry.internal_errors >= 3) return this.fail(entry, code, err.message, true);
      entry.state = "ready";
      this.notBefore.set(key, Date.now() + backoffDelay(entry.tries, { random: this.random, ...err.retryAfterMs ? { retryAfterMs: err.retryAfterMs } : {} }));
      await this.store.put(entry);
    } else if (FINAL.has(code)) {
      await this.fail(entry, code, err.message);
    } else {
      entry.state = "ready";
      this.notBefore.set(key, Date.now() + backoffDelay(entry.tries, { random: this.random }));
    }
  }
  /**
   * Marks an entry failed. After `internal` it stays (same id, the person may retry: it may have
   * been stored); every other final error removes it.
   */
  async fail(entry, code, message, keep = false) {
    if (keep) {
      entry.state = "failed";
      entry.error = code;
      await this.store.put(entry);
    } else {
      await this.remove(entry.client_msg_id);
    }
    this.settle({
      state: "failed",
      client_msg_id: entry.client_msg_id,
      ...entry.ticket_id ? { ticket_id: entry.ticket_id } : {},
      code,
      message,
      entry: { ...entry }
    });
  }
  /** Tries a failed entry again with the same `client_msg_id` (after `internal`). */
  async retry(clientMsgId) {
    const entry = this.entries.get(clientMsgId);
    if (!entry || entry.state !== "failed") return;
    entry.state = "ready";
    entry.internal_errors = 0;
    await this.store.put(entry);
    this.flush();
  }
  settle(delivery) {
    this.emit(delivery);
    const list = this.waiters.get(delivery.client_msg_id);
    this.waiters.delete(delivery.client_msg_id);
    for (const resolve of list ?? []) resolve(delivery);
  }
  emit(delivery) {
    for (const l of this.listeners) l(delivery);
  }
};
function extras(attachments, meta) {
  return { ...attachments && attachments.length ? { attachments } : {}, ...meta !== void 0 ? { meta } : {} };
}
function groupOf(entry) {
  if (entry.ticket_id !== void 0) return `ticket:${entry.ticket_id}`;
  return `open:${entry.open_ref ?? entry.client_msg_id}`;
}

// src/http.ts
function fetchOf(custom) {
  const f = custom ?? globalThis.fetch;
  if (!f) throw new TypeError("no fetch: pass one in the options");
  return f;
}
async function call(baseUrl, method, path, body, opts = {}) {
  const headers = {};
  if (body !== void 0) headers["content-type"] = "application/json";
  if (opts.token) headers["authorization"] = `Bearer ${opts.token}`;
  const res = await fetchOf(opts.fetch)(baseUrl.replace(/\/+$/, "") + path, {
    method,
    headers,
    ...body !== void 0 ? { body: JSON.stringify(body) } : {}
  });
  const text = await res.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : void 0;
  } catch {
    throw new HubError({ code: res.status >= 500 ? "unavailable" : "internal", message: `HTTP ${res.status} without a JSON body` });
  }
  if (res.status >= 200 && res.status < 300) return parsed;
  const error = parsed?.error;
  throw new HubError(error ?? { code: "internal", message: `HTTP ${res.status}` });
}
function requestCode(baseUrl, phone, opts) {
  return call(baseUrl, "POST", "/v1/auth/code", { phone }, opts);
}
function signIn(baseUrl, phone, code, device, opts) {
  return call(baseUrl, "POST", "/v1/auth/verify", { phone, code, device }, opts);
}
function agentLogin(baseUrl, email, password, opts) {
  return call(baseUrl, "POST", "/v1/agent/login", { email, password }, opts);
}
async function signOut(baseUrl, token, opts) {
  await call(baseUrl, "DELETE", "/v1/auth/session", void 0, { ...opts, token });
}
function me(baseUrl, token, opts) {
  return call(baseUrl, "GET", "/v1/me", void 0, { ...opts, token });
}

// src/receipts.ts
var RECEIPT_INTERVAL_MS = 1e3;
var Receipts = class {
  constructor(isLocal, onChange, sendReceipt) {
    this.isLocal = isLocal;
    this.onChange = onChange;
    this.sendReceipt = sendReceipt;
    /** Own messages still short of `read`, per ticket. */
    __publicField(this, "own", /* @__PURE__ */ new Map());
    /** Per ticket: the highest marks seen from the other participants. */
    __publicField(this, "others", /* @__PURE__ */ new Map());
    /** Per ticket and kind: the mark last sent or seen for the local principal, and the timer. */
    __publicField(this, "outbound", /* @__PURE__ */ new Map());
  }
  /** A message of ours was stored at `seq`: it shows `sent`, or more if the marks are already past it. */
  sent(ticketId, clientMsgId, seq) {
    const list = this.own.get(ticketId) ?? [];
    if (!list.some((m) => m.client_msg_id === clientMsgId)) list.push({ client_msg_id: clientMsgId, seq, state: "sent" });
    this.own.set(ticketId, list);
    this.apply(ticketId);
  }
  /** Marks from `ticket.subscribe.ok` or a `ticket.receipt`. Marks only move forward. */
  mark(ticketId, mark) {
    if (this.isLocal(mark.participant)) {
      this.seen(ticketId, "ticket.delivered", mark.delivered_seq);
      this.seen(ticketId, "ticket.read", mark.read_seq);
      return;
    }
    const cur = this.others.get(ticketId) ?? { delivered: 0, read: 0 };
    this.others.set(ticketId, { delivered: Math.max(cur.delivered, mark.delivered_seq), read: Math.max(cur.read, mark.read_seq) });
    this.apply(ticketId);
  }
  apply(ticketId) {
    const marks = this.others.get(ticketId);
    const list = this.own.get(ticketId);
    if (!marks || !list) return;
    for (const m of list) {
      if (m.state === "sent" && marks.delivered >= m.seq) {
        m.state = "delivered";
        this.onChange({ state: "delivered", client_msg_id: m.client_msg_id, ticket_id: ticketId, seq: m.seq });
      }
      if (m.state === "delivered" && marks.read >= m.seq) {
        m.state = "read";
        this.onChange({ state: "read", client_msg_id: m.client_msg_id, ticket_id: ticketId, seq: m.seq });
      }
    }
    this.own.set(ticketId, list.filter((m) => m.state !== "read"));
  }
  seen(ticketId, type, seq) {
    const key = `${type} ${ticketId}`;
    const o = this.outbound.get(key) ?? { mark: 0, wanted: 0, at: 0 };
    o.mark = Math.max(o.mark, seq);
    this.outbound.set(key, o);
  }
  /** The cursor moved: `ticket.delivered` with it, unless a mark at least as high is known. */
  delivered(ticketId, cursor) {
    this.want("ticket.delivered", ticketId, cursor);
  }
  /** The person saw the ticket up to `seq` (never above the cursor: the caller clamps it). */
  read(ticketId, seq) {
    this.want("ticket.read", ticketId, seq);
  }
  want(type, ticketId, seq) {
    const key = `${type} ${ticketId}`;
    const o = this.outbound.get(key) ?? { mark: 0, wanted: 0, at: 0 };
    this.outbound.set(key, o);
    o.wanted = Math.max(o.wanted, seq);
    if (o.wanted <= o.mark || o.timer) return;
    const wait = Math.max(0, o.at + RECEIPT_INTERVAL_MS - Date.now());
    o.timer = setTimeout(() => {
      o.timer = void 0;
      if (o.wanted <= o.mark) return;
      const seqNow = o.wanted;
      o.at = Date.now();
      this.sendReceipt(type, ticketId, seqNow).then(
        () => {
          o.mark = Math.max(o.mark, seqNow);
          if (type === "ticket.read") this.seen(ticketId, "ticket.delivered", seqNow);
        },
        () => {
        }
      );
    }, wait);
  }
  /** Drops pending receipts (the socket ended: the next resume sends them again). */
  cancel() {
    for (const o of this.outbound.values()) {
      if (o.timer) clearTimeout(o.timer);
      o.timer = void 0;
      o.wanted = o.mark;
    }
  }
  forget(ticketId) {
    this.own.delete(ticketId);
    this.others.delete(ticketId);
    this.outbound.delete(`ticket.delivered ${ticketId}`);
    this.outbound.delete(`ticket.read ${ticketId}`);
  }
};

// src/client.ts
var MemoryTokenStore = class {
  constructor(value) {
    this.value = value;
  }
  load() {
    return this.value;
  }
  save(token) {
    this.value = token;
  }
};
var SESSION_ENDED = /* @__PURE__ */ new Set([4002, 4003, 4004]);
var CLIENT_BUG = /* @__PURE__ */ new Set([1007, 1009, 4009, 4010]);
var CONNECT_TIMEOUT_MS = 15e3;
var AUTH_TIMEOUT_MS = 15e3;
var PING_AFTER_MS = 3e4;
var SILENCE_LIMIT_MS = 6e4;
var ATTEMPT_RESET_MS = 6e4;
var REFRESH_CHECK_MS = 36e5;
var BACKGROUND_GRACE_MS = 1e4;
var MAX_FOLLOWED = 100;
var NETWORK_PING_MS = 1e4;
var TYPING_INTERVAL_MS = 3e3;
var FRAMES_PER_SEC = 40;
var FRAME_BURST = 80;
var HubClient = class {
  constructor(options) {
    this.options = options;
    __publicField(this, "stateValue", "disconnected");
    __publicField(this, "codec");
    __publicField(this, "WS");
    __publicField(this, "tokenStore");
    __publicField(this, "listeners", {
      state: /* @__PURE__ */ new Set(),
      event: /* @__PURE__ */ new Set(),
      "ticket.event": /* @__PURE__ */ new Set(),
      cursor: /* @__PURE__ */ new Set(),
      delivery: /* @__PURE__ */ new Set(),
      token: /* @__PURE__ */ new Set(),
      tickets: /* @__PURE__ */ new Set(),
      closed: /* @__PURE__ */ new Set(),
      retry: /* @__PURE__ */ new Set(),
      subscribed: /* @__PURE__ */ new Set(),
      report: /* @__PURE__ */ new Set()
    });
    __publicField(this, "outbox");
    __publicField(this, "receipts");
    __publicField(this, "random");
    __publicField(this, "ws");
    /** Increases with every socket; frames and timers of an older socket are ignored. */
    __publicField(this, "generation", 0);
    /** Increases with every `open`, so that overlapping ones make one socket. */
    __publicField(this, "opening", 0);
    __publicField(this, "nextId", 1);
    __publicField(this, "pending", /* @__PURE__ */ new Map());
    __publicField(this, "inbound", Promise.resolve());
    __publicField(this, "sendQueue", []);
    __publicField(this, "tokens", FRAME_BURST);
    __publicField(this, "tokensAt", Date.now());
    __publicField(this, "paceTimer");
    __publicField(this, "attempt", 0);
    __publicField(this, "longBackoff", false);
    __publicField(this, "timers", /* @__PURE__ */ new Set());
    __publicField(this, "reconnectTimer");
    __publicField(this, "retryAt", 0);
    __publicField(this, "lastInbound", 0);
    __publicField(this, "clientClosing", false);
    __publicField(this, "signingOut", false);
    __publicField(this, "revokeReason");
    __publicField(this, "sessionDead", false);
    __publicField(this, "session", null);
    __publicField(this, "inBackground", false);
    __publicField(this, "started", false);
    __publicField(this, "offline", false);
    __publicField(this, "backgroundTimer");
    /** The signed-in principal, from `auth.ok` / `auth.agent.ok`. */
    __publicField(this, "userId");
    __publicField(this, "agent");
    /** Request types answered `unknown_type` on this socket: the hub is older; not sent again on it. */
    __publicField(this, "unsupported", /* @__PURE__ */ new Set());
    /** Per ticket: when `ticket.typing` was last sent. */
    __publicField(this, "typingAt", /* @__PURE__ */ new Map());
    __publicField(this, "cursors", /* @__PURE__ */ new Map());
    __publicField(this, "followed", /* @__PURE__ */ new Set());
    /** Followed tickets whose `ticket.subscribe.ok` arrived on the current socket. */
    __publicField(this, "resumed", /* @__PURE__ */ new Set());
    this.codec = codecFor(options.encoding ?? "json");
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (!WS) throw new TypeError("no WebSocket: pass one in the options (Node 20: the `ws` package)");
    this.WS = WS;
    this.tokenStore = options.tokenStore ?? tokenStoreOf(options.token);
    this.random = options.random ?? Math.random;
    this.outbox = new Outbox(options.outboxStore, this.random);
    this.outbox.onDelivery((d) => this.onDelivery(d));
    this.receipts = new Receipts(
      (p) => this.isLocal(p),
      (change) => this.emit("delivery", change),
      async (type, ticketId, seq) => {
        await this.request({ type, ticket_id: ticketId, seq });
      }
    );
    this.outbox.attach({
      canSend: (ticketId) => this.stateValue === "connected" && !this.sessionDead && (ticketId === void 0 || !this.followed.has(ticketId) || this.resumed.has(ticketId)),
      sendOpen: async (e) => (await this.sendRequest(openRequest(e), 0)).ticket,
      sendMessage: async (e) => await this.sendRequest(sendRequest(e), 0)
    });
    for (const [ticketId, cursor] of Object.entries(options.follow ?? {})) this.follow(ticketId, cursor);
  }
  get state() {
    return this.stateValue;
  }
  on(type, listener) {
    this.listeners[type].add(listener);
    return () => this.listeners[type].delete(listener);
  }
  /** Connects (from `disconnected` or `closed` after a new token): attempt 0. */
  async connect() {
    if (this.stateValue !== "disconnected" && this.stateValue !== "closed") return;
    this.attempt = 0;
    this.sessionDead = false;
    this.started = true;
    await this.outbox.load();
    this.open();
  }
  /**
   * Starts again after a sign-in (from `closed`): stores the new token and connects. The caller
   * deletes the previous account's local data first when `user_id` changed.
   */
  async useSession(token) {
    const session = asSession(token);
    await this.saveToken({ ...session, receivedAt: session.receivedAt ?? Date.now() });
    if (this.stateValue === "closed") this.setState("disconnected");
    await this.connect();
  }
  /** Closes the socket with 1000 and arms no timer, as when the app goes to the background. */
  disconnect() {
    this.cancelTimers();
    this.outbox.stop();
    const ws = this.ws;
    if (ws) {
      this.clientClosing = true;
      this.endSocket(void 0);
      ws.close(1e3);
    }
    if (this.stateValue !== "closed") this.setState("disconnected");
  }
  /**
   * The app went to the background. After the 10 s grace the socket is closed with 1000 and no
   * reconnect timer is armed, so the hub pushes notifications again (CLIENTS.md section 9).
   * Entries without a reply by then stay in the outbox.
   */
  background() {
    this.inBackground = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = void 0;
    if (this.backgroundTimer) clearTimeout(this.backgroundTimer);
    this.backgroundTimer = setTimeout(() => {
      this.backgroundTimer = void 0;
      if (this.inBackground && this.stateValue !== "closed") this.disconnect();
    }, BACKGROUND_GRACE_MS);
  }
  /** The app came to the foreground: connect after up to 1 s of jitter, keeping the attempt. */
  foreground() {
    this.inBackground = false;
    if (this.backgroundTimer) clearTimeout(this.backgroundTimer);
    this.backgroundTimer = void 0;
    this.reconnectSoon();
  }
  /**
   * The OS reports the network lost or back (or changed). Lost: no tries, and the attempt does not
   * grow. Back while disconnected: connect after up to 1 s. While connected: `ping`, and without
   * `ping.ok` within 10 s the connection is dropped, the attempt unchanged.
   */
  networkChanged(online) {
    this.offline = !online;
    if (!online) {
      if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
      this.reconnectTimer = void 0;
      return;
    }
    if (this.stateValue === "connected") {
      const generation = this.generation;
      this.request({ type: "ping" }, NETWORK_PING_MS).catch(() => {
        if (generation === this.generation && this.ws) this.drop(void 0, "no ping.ok after a network change", false);
      });
    } else {
      this.reconnectSoon();
    }
  }
  reconnectSoon() {
    if (this.stateValue !== "disconnected" || this.inBackground || this.offline || !this.sessionLoadable()) return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const delay = Math.floor(this.random() * 1e3);
    this.retryAt = Date.now() + delay;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = void 0;
      if (this.stateValue === "disconnected") void this.outbox.load().then(() => this.open());
    }, delay);
  }
  /** Whether the client was started (`connect`) and not signed out. */
  sessionLoadable() {
    return this.started;
  }
  /**
   * Signs out: `session.sign_out` when connected, then at once deletes the token, the outbox and
   * the cursors, whatever the answer. (Without a socket the app calls `signOut` of http.ts.)
   */
  async signOut() {
    this.signingOut = true;
    if (this.stateValue === "connected") {
      try {
        await this.request({ type: "session.sign_out" });
      } catch {
      }
    }
    for (const e of this.outbox.list()) await this.outbox.remove(e.client_msg_id);
    this.cursors.clear();
    this.followed.clear();
    await this.saveToken(null);
    this.disconnect();
    this.started = false;
    this.toClosed({ kind: "signed_out" });
  }
  /** Follows a ticket from `cursor` (the highest seq stored locally; 0 for none). */
  follow(ticketId, cursor = 0) {
    this.followed.add(ticketId);
    if (!this.cursors.has(ticketId) || (this.cursors.get(ticketId) ?? 0) < cursor) this.cursors.set(ticketId, cursor);
    if (this.stateValue === "connected") this.subscribe(ticketId);
  }
  async unfollow(ticketId) {
    this.followed.delete(ticketId);
    this.resumed.delete(ticketId);
    if (this.stateValue === "connected") await this.request({ type: "ticket.unsubscribe", ticket_id: ticketId }).catch(() => {
    });
  }
  /**
   * The person has seen the ticket up to `seq` (the app in the foreground, the event on screen):
   * `ticket.read`, at most once per second, never above the cursor.
   */
  markRead(ticketId, seq) {
    const cursor = this.cursors.get(ticketId) ?? 0;
    this.receipts.read(ticketId, Math.min(seq, cursor));
  }
  cursor(ticketId) {
    return this.cursors.get(ticketId);
  }
  /** Opens a ticket through the outbox. Resolves with its entry (`client_msg_id`). */
  openTicket(subject, body) {
    return this.outbox.open(subject, body);
  }
  /**
   * Sends a message through the outbox: it goes once, in order, whatever the connection does.
   * `attachments`: ids of stored uploads; `meta`: the app's data kept with the entry.
   */
  send(ticketId, body, options = {}) {
    return this.outbox.send({ ticket_id: ticketId }, body, options.attachments, options.meta);
  }
  /** When the next connection attempt is due (ms), while one is waiting. */
  get nextAttemptAt() {
    return this.reconnectTimer ? this.retryAt : void 0;
  }
  /** Skips the rest of the backoff wait ("retry now"); the attempt count is kept. */
  retryNow() {
    if (!this.reconnectTimer || this.stateValue !== "disconnected") return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = void 0;
    void this.open();
  }
  /**
   * Sends a request and resolves with its reply. Rejects with `HubError` on an `error` frame and
   * with `ConnectionLost` when the socket ends, the client is not connected, or no reply comes in
   * time. Requests are not replayed after a reconnect: recompute them from the resumed state.
   */
  request(request, timeoutMs) {
    if (this.stateValue !== "connected") return Promise.reject(new ConnectionLost(`not connected (${this.stateValue})`));
    if (this.unsupported.has(request.type)) {
      return Promise.reject(new HubError({ code: "unknown_type", message: `${request.type} is unknown to this hub` }));
    }
    const reply = this.sendRequest(request, timeoutMs ?? this.options.requestTimeoutMs ?? 15e3);
    return reply.catch((err) => {
      if (err instanceof HubError && err.code === "unknown_type") this.unsupported.add(request.type);
      throw err;
    });
  }
  /**
   * The person is typing in a followed ticket: `ticket.typing` at most every 3 s (the hub refuses
   * a second one within 2 s; 3 s leaves room for timer jitter). A refusal is dropped, never resent.
   */
  typing(ticketId) {
    const now = Date.now();
    if (now - (this.typingAt.get(ticketId) ?? 0) < TYPING_INTERVAL_MS || this.stateValue !== "connected") return;
    this.typingAt.set(ticketId, now);
    this.request({ type: "ticket.typing", ticket_id: ticketId }).catch(() => {
    });
  }
  // -------------------------------------------------------------------------------------------
  // The socket
  wsUrl() {
    const base = this.options.url.replace(/\/+$/, "").replace(/^http/, "ws");
    return `${base}/v1/ws`;
  }
  async open() {
    this.cancelTimers();
    const opening = ++this.opening;
    const session = await this.tokenStore.load();
    if (opening !== this.opening) return;
    this.session = session;
    if (!this.session) return this.toClosed({ kind: "no_token" });
    const generation = ++this.generation;
    this.setState("connecting");
    this.nextId = 1;
    this.unsupported = /* @__PURE__ */ new Set();
    this.typingAt.clear();
    this.resumed.clear();
    this.clientClosing = false;
    this.revokeReason = void 0;
    let ws;
    try {
      ws = new this.WS(this.wsUrl(), this.codec.subprotocol);
    } catch (err) {
      this.report(`cannot open the socket: ${String(err)}`);
      return this.retryLater();
    }
    this.ws = ws;
    ws.binaryType = "arraybuffer";
    const current = () => generation === this.generation;
    this.timer(() => {
      if (current() && this.stateValue === "connecting") this.drop(void 0, "connect timeout");
    }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      if (!current()) return;
      if (ws.protocol !== this.codec.subprotocol) {
        this.report(`the hub answered subprotocol "${ws.protocol}" instead of ${this.codec.subprotocol}`);
        this.clientClosing = true;
        ws.close(1e3);
        this.endSocket(void 0);
        return this.retryLater();
      }
      this.lastInbound = Date.now();
      this.setState("authenticating");
      this.authenticate(generation);
      this.watchSilence(generation);
    };
    ws.onmessage = (ev) => {
      if (!current()) return;
      this.lastInbound = Date.now();
      let frame;
      try {
        frame = this.codec.decode(ev.data);
      } catch (err) {
        return this.report(`undecodable frame from the hub: ${String(err)}`);
      }
      this.inbound = this.inbound.then(() => current() ? this.handle(frame) : void 0).catch((err) => this.report(String(err)));
    };
    ws.onerror = () => {
    };
    ws.onclose = (ev) => {
      if (!current()) return;
      this.onClose(ev.code);
    };
  }
  authenticate(generation) {
    const token = this.session.token;
    this.sendRequest({ type: "auth", token }, AUTH_TIMEOUT_MS, true).then(
      (reply) => {
        if (generation !== this.generation) return;
        if (reply.type === "auth.ok") {
          this.userId = reply.user_id;
          this.agent = void 0;
        } else if (reply.type === "auth.agent.ok") {
          this.agent = reply.agent;
          this.userId = void 0;
        }
        const expiresAt = reply.session_expires_at;
        void this.onAuthenticated(generation, expiresAt);
      },
      (err) => {
        if (generation !== this.generation) return;
        if (err instanceof HubError && err.code === "unauthorized") {
          void this.sessionEnded({ kind: "session_ended" });
        } else if (!(err instanceof ConnectionLost) || err.closeCode === void 0) {
          this.drop(1e3, `auth failed: ${err.message}`);
        }
      }
    );
  }
  async onAuthenticated(generation, expiresAt) {
    const session = this.session;
    if (session.expiresAt !== expiresAt || session.receivedAt === void 0 || session.refreshInFlight) {
      const { refreshInFlight: _, ...rest } = session;
      this.session = { ...rest, expiresAt, receivedAt: session.receivedAt ?? Date.now() };
      await this.saveToken(this.session, false);
    }
    this.setState("connected");
    this.timer(() => {
      if (generation === this.generation && this.stateValue === "connected") {
        this.attempt = 0;
        this.longBackoff = false;
      }
    }, ATTEMPT_RESET_MS);
    this.scheduleRefreshCheck(generation);
    await this.resume();
  }
  /** The resume sequence (CLIENTS.md section 7): lists, subscriptions from cursors, the outbox. */
  async resume() {
    if (this.options.resumeLists ?? true) {
      this.request({ type: "ticket.list" }).then((r) => this.emit("tickets", r.tickets), () => {
      });
      if (this.agent) this.request({ type: "queue.subscribe" }).then((r) => this.emit("tickets", r.tickets), () => {
      });
    }
    for (const ticketId of this.followed) this.subscribe(ticketId);
    this.outbox.flush();
  }
  subscribe(ticketId) {
    const cursor = this.cursors.get(ticketId) ?? 0;
    this.resumed.delete(ticketId);
    this.request({ type: "ticket.subscribe", ticket_id: ticketId, after_seq: cursor }).then(
      (reply) => {
        this.resumed.add(ticketId);
        this.emit("subscribed", ticketId, reply);
        for (const mark of reply.marks) this.receipts.mark(ticketId, mark);
        const now = this.cursors.get(ticketId);
        if (now) this.receipts.delivered(ticketId, now);
        this.outbox.flush();
      },
      (err) => this.subscribeFailed(ticketId, err)
    );
  }
  subscribeFailed(ticketId, err) {
    if (!(err instanceof HubError) || !this.followed.has(ticketId)) return;
    if (err.code === "bad_request" && this.followed.size > MAX_FOLLOWED) {
      this.followed.delete(ticketId);
      this.report(`more than ${MAX_FOLLOWED} tickets followed; ${ticketId} is no longer followed`);
    } else if (err.code === "bad_request") {
      this.cursors.set(ticketId, 0);
      this.emit("cursor", ticketId, 0);
      this.subscribe(ticketId);
    } else if (err.code === "not_found" || err.code === "forbidden") {
      this.receipts.forget(ticketId);
      this.followed.delete(ticketId);
      this.cursors.delete(ticketId);
      void this.outbox.dropTicket(ticketId);
    } else if (err.code === "unavailable" || err.code === "internal" || err.code === "rate_limited") {
      const delay = backoffDelay(this.attempt, { random: this.random, ...err.retryAfterMs ? { retryAfterMs: err.retryAfterMs } : {} });
      this.timer(() => {
        if (this.stateValue === "connected" && this.followed.has(ticketId)) this.subscribe(ticketId);
      }, delay);
    } else {
      this.report(`ticket.subscribe refused: ${err.message}`);
    }
  }
  // -------------------------------------------------------------------------------------------
  // Frames
  async handle(frame) {
    if (isReplyOrError(frame)) return this.handleReply(frame);
    const event = frame;
    switch (event.type) {
      case "ticket.event":
        await this.handleTicketEvent(event.event);
        break;
      case "session.expiring":
        if (event.expires_at >= (this.session?.expiresAt ?? 0)) void this.refresh();
        break;
      case "session.expired":
      case "session.revoked":
        this.sessionDead = true;
        if (event.type === "session.revoked") this.revokeReason = event.reason;
        {
          const generation = this.generation;
          this.timer(() => {
            if (generation === this.generation && this.ws) this.onClose(event.type === "session.revoked" ? 4003 : 4004);
          }, 2e3);
        }
        break;
      case "ticket.receipt":
        this.receipts.mark(event.ticket_id, event);
        break;
      case "ticket.deleted":
        this.receipts.forget(event.ticket_id);
        this.followed.delete(event.ticket_id);
        this.cursors.delete(event.ticket_id);
        await this.outbox.dropTicket(event.ticket_id);
        break;
    }
    this.emit("event", event);
  }
  async handleReply(frame) {
    if (frame.id === null) {
      const err = frame;
      if (err.code !== "rate_limited") this.report(`a frame was refused: ${err.code}`);
      return;
    }
    const pending = this.pending.get(frame.id);
    if (!pending) return;
    this.pending.delete(frame.id);
    if (pending.timer) clearTimeout(pending.timer);
    if (frame.type === "error") return pending.reject(new HubError(frame));
    if (frame.type === "session.refresh.ok") {
      this.session = { token: frame.token, expiresAt: frame.expires_at, receivedAt: Date.now() };
      await this.saveToken(this.session);
    }
    pending.resolve(frame);
  }
  async handleTicketEvent(event) {
    const ticketId = event.ticket_id;
    const cursor = this.cursors.get(ticketId);
    if (cursor === void 0) {
      await this.emitTicketEvent(event);
      return;
    }
    if (event.seq <= cursor) return;
    if (event.seq > cursor + 1) {
      if (this.stateValue === "connected") this.subscribe(ticketId);
      return;
    }
    await this.emitTicketEvent(event);
    if (this.isOwn(event)) await this.outbox.ownEvent(event);
    this.cursors.set(ticketId, event.seq);
    this.emit("cursor", ticketId, event.seq);
    this.receipts.delivered(ticketId, event.seq);
  }
  async emitTicketEvent(event) {
    for (const l of this.listeners["ticket.event"]) await l(event);
  }
  isOwn(event) {
    return this.isLocal(event.author);
  }
  /** Whether a participant is the local principal. */
  isLocal(p) {
    if (p.kind === "user") return p.id === this.userId;
    if (p.kind === "agent") return p.id === this.agent?.id;
    return false;
  }
  onDelivery(delivery) {
    if (delivery.state === "sent") this.receipts.sent(delivery.ticket_id, delivery.client_msg_id, delivery.seq);
    if (delivery.state === "sent" && delivery.ticket && (this.options.followOpened ?? true)) {
      if (!this.followed.has(delivery.ticket_id)) this.follow(delivery.ticket_id, 0);
    }
    this.emit("delivery", delivery);
  }
  // -------------------------------------------------------------------------------------------
  // Sessions
  scheduleRefreshCheck(generation) {
    this.maybeRefresh();
    this.timer(() => {
      if (generation === this.generation && this.stateValue === "connected") this.scheduleRefreshCheck(generation);
    }, REFRESH_CHECK_MS);
  }
  /** Refreshes when less than half of the session's lifetime is left. */
  maybeRefresh() {
    const s = this.session;
    if (!s?.expiresAt || s.receivedAt === void 0 || s.refreshInFlight) return;
    const lifetime = s.expiresAt - s.receivedAt;
    if (s.expiresAt - Date.now() < lifetime / 2) void this.refresh();
  }
  /** `session.refresh`, with the in-flight flag written first and the new token stored at once. */
  async refresh() {
    if (this.stateValue !== "connected" || !this.session || this.session.refreshInFlight) return;
    this.session = { ...this.session, refreshInFlight: true };
    await this.saveToken(this.session, false);
    try {
      await this.request({ type: "session.refresh" });
    } catch (err) {
      if (err instanceof HubError && err.code === "unauthorized") return this.sessionEnded({ kind: "session_ended" });
      if (err instanceof HubError && err.code === "rate_limited") {
        this.session = { ...this.session, refreshInFlight: false };
        this.timer(() => void this.refresh(), err.retryAfterMs ?? 1e3);
        return;
      }
      if (this.session) this.session = { ...this.session, refreshInFlight: false };
    }
  }
  async saveToken(token, announce = true) {
    await this.tokenStore.save(token);
    if (announce) this.emit("token", token);
  }
  /** The session is dead: delete the token and the local data, fail pending requests, `closed`. */
  async sessionEnded(reason) {
    const ws = this.ws;
    this.clientClosing = true;
    this.endSocket(reason.closeCode);
    ws?.close(1e3);
    this.cursors.clear();
    this.followed.clear();
    for (const e of this.outbox.list()) await this.outbox.remove(e.client_msg_id);
    await this.saveToken(null);
    this.toClosed(reason);
  }
  // -------------------------------------------------------------------------------------------
  // Closing, reconnecting
  onClose(code) {
    const byClient = this.clientClosing;
    this.endSocket(code);
    if (byClient) return;
    if (code === 1e3) {
      if (this.signingOut) return this.toClosed({ kind: "signed_out" });
      void this.sessionEnded({ kind: "session_ended", closeCode: 1e3 });
      return;
    }
    if (SESSION_ENDED.has(code)) {
      void this.sessionEnded({
        kind: "session_ended",
        closeCode: code,
        ...code === 4003 && this.revokeReason ? { revokeReason: this.revokeReason } : {}
      });
      return;
    }
    if (code === 1012) this.attempt = Math.max(this.attempt, 3);
    if (CLIENT_BUG.has(code)) {
      this.longBackoff = true;
      this.report(`the hub closed with ${code}: a client bug`);
    }
    this.retryLater();
  }
  /** Ends the current socket locally: pending requests fail at once; the outbox keeps its entries. */
  endSocket(closeCode) {
    this.generation++;
    this.ws = void 0;
    this.resumed.clear();
    this.receipts.cancel();
    this.sendQueue = [];
    if (this.paceTimer) clearTimeout(this.paceTimer);
    this.paceTimer = void 0;
    const pending = this.pending;
    this.pending = /* @__PURE__ */ new Map();
    for (const p of pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new ConnectionLost("the socket ended", closeCode));
    }
  }
  /** Drops the connection (timeouts, failed auth) and reconnects with backoff. */
  drop(code, why, countAttempt = true) {
    const ws = this.ws;
    this.clientClosing = true;
    this.endSocket(void 0);
    try {
      ws?.close(code ?? 1e3);
    } catch {
    }
    this.report(why);
    this.retryLater(countAttempt);
  }
  /** `disconnected` with the backoff timer armed; none in the background or without a network. */
  retryLater(countAttempt = true) {
    this.cancelTimers();
    this.setState("disconnected");
    if (this.inBackground || this.offline) return;
    const delay = backoffDelay(this.attempt, { policy: this.longBackoff ? LONG_BACKOFF : NORMAL_BACKOFF, random: this.random });
    if (countAttempt) this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = void 0;
      if (this.stateValue === "disconnected") void this.open();
    }, delay);
    this.emit("retry", this.retryAt);
  }
  toClosed(reason) {
    this.cancelTimers();
    this.outbox.stop();
    this.started = false;
    if (this.stateValue === "closed") return;
    this.setState("closed");
    this.emit("closed", reason);
  }
  watchSilence(generation) {
    const check = () => {
      if (generation !== this.generation) return;
      const silent = Date.now() - this.lastInbound;
      if (silent >= SILENCE_LIMIT_MS) return this.drop(void 0, "no inbound frame for 60 s");
      if (silent >= PING_AFTER_MS && this.stateValue === "connected") this.request({ type: "ping" }).catch(() => {
      });
      this.timer(check, PING_AFTER_MS / 2);
    };
    this.timer(check, PING_AFTER_MS / 2);
  }
  timer(fn, ms) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }
  cancelTimers() {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = void 0;
  }
  // -------------------------------------------------------------------------------------------
  // Sending
  /** `timeoutMs` 0: no timeout (outbox requests wait for their reply or the socket's end). */
  sendRequest(request, timeoutMs, authFrame = false) {
    const ws = this.ws;
    if (!ws || !authFrame && (this.stateValue !== "connected" || this.sessionDead)) {
      return Promise.reject(new ConnectionLost(`not connected (${this.stateValue})`));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = timeoutMs > 0 ? setTimeout(() => {
        this.pending.delete(id);
        reject(new ConnectionLost(`no reply to ${request.type} within ${timeoutMs} ms`, void 0, "timeout"));
        if (authFrame) this.drop(1e3, "no reply to auth");
      }, timeoutMs) : void 0;
      this.pending.set(id, { resolve, reject, timer });
      this.enqueue(this.codec.encode({ id, ...request }));
    });
  }
  /** Paces frames with a token bucket (40 per second, bursts of 80). */
  enqueue(data) {
    this.sendQueue.push(data);
    this.pace();
  }
  pace() {
    const now = Date.now();
    this.tokens = Math.min(FRAME_BURST, this.tokens + (now - this.tokensAt) * FRAMES_PER_SEC / 1e3);
    this.tokensAt = now;
    while (this.sendQueue.length > 0 && this.tokens >= 1 && this.ws) {
      this.tokens -= 1;
      this.ws.send(this.sendQueue.shift());
    }
    if (this.sendQueue.length > 0 && !this.paceTimer) {
      this.paceTimer = setTimeout(() => {
        this.paceTimer = void 0;
        this.pace();
      }, Math.ceil((1 - this.tokens) * 1e3 / FRAMES_PER_SEC));
    }
  }
  setState(state) {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.emit("state", state);
  }
  report(message) {
    this.emit("report", message);
  }
  emit(type, ...args) {
    for (const l of this.listeners[type]) l(...args);
  }
};
function asSession(token) {
  return typeof token === "string" ? { token } : token ?? null;
}
function tokenStoreOf(token) {
  if (typeof token !== "function") return new MemoryTokenStore(asSession(token));
  let saved;
  return {
    load: async () => saved !== void 0 ? saved : asSession(await token()),
    save: (t) => {
      saved = t;
    }
  };
}
function openRequest(e) {
  return {
    type: "ticket.open",
    subject: e.subject ?? "",
    body: e.body,
    client_msg_id: e.client_msg_id,
    ...e.attachments ? { attachments: e.attachments } : {}
  };
}
function sendRequest(e) {
  return {
    type: "ticket.send",
    ticket_id: e.ticket_id,
    body: e.body,
    client_msg_id: e.client_msg_id,
    ...e.attachments ? { attachments: e.attachments } : {}
  };
}

// src/stores.ts
var KeyValueOutboxStore = class {
  constructor(storage, key = "anapars.outbox", onDamaged = () => {
  }) {
    this.storage = storage;
    this.key = key;
    this.onDamaged = onDamaged;
    __publicField(this, "chain", Promise.resolve());
  }
  load() {
    return this.serial(async () => Object.values(await this.read()));
  }
  put(entry) {
    return this.serial(async () => {
      const all = await this.read();
      all[entry.client_msg_id] = { ...entry };
      await this.storage.setItem(this.key, JSON.stringify(all));
    });
  }
  delete(clientMsgId) {
    return this.serial(async () => {
      const all = await this.read();
      if (!(clientMsgId in all)) return;
      delete all[clientMsgId];
      if (Object.keys(all).length === 0) await this.storage.removeItem(this.key);
      else await this.storage.setItem(this.key, JSON.stringify(all));
    });
  }
  async read() {
    const text = await this.storage.getItem(this.key);
    if (!text) return {};
    try {
      const parsed = JSON.parse(text);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
        const entries = {};
        for (const [id, e] of Object.entries(parsed)) if (isEntry(e) && e.client_msg_id === id) entries[id] = e;
        return entries;
      }
      throw new TypeError("the stored outbox is not an object");
    } catch (err) {
      this.onDamaged(err);
      return {};
    }
  }
  serial(op) {
    const next = this.chain.then(op, op);
    this.chain = next.catch(() => {
    });
    return next;
  }
};
var KeyValueTokenStore = class {
  constructor(storage, key = "anapars.session") {
    this.storage = storage;
    this.key = key;
  }
  async load() {
    const text = await this.storage.getItem(this.key);
    if (!text) return null;
    try {
      const parsed = JSON.parse(text);
      return parsed && typeof parsed.token === "string" ? parsed : null;
    } catch {
      return null;
    }
  }
  async save(token) {
    if (token === null) await this.storage.removeItem(this.key);
    else await this.storage.setItem(this.key, JSON.stringify(token));
  }
};
function isEntry(value) {
  const e = value;
  return !!e && typeof e === "object" && typeof e.client_msg_id === "string" && (e.kind === "open" || e.kind === "send") && typeof e.body === "string" && typeof e.order === "number";
}
var IDB_STORE = "outbox";
var IndexedDbOutboxStore = class {
  constructor(name = "anapars-hub-client", factory) {
    this.name = name;
    this.factory = factory;
    __publicField(this, "db");
  }
  async load() {
    const records = await this.run("readonly", (s) => s.getAll());
    return records.filter(isEntry);
  }
  async put(entry) {
    await this.run("readwrite", (s) => s.put({ ...entry }));
  }
  async delete(clientMsgId) {
    await this.run("readwrite", (s) => s.delete(clientMsgId));
  }
  /** Closes the database (for example before deleting it at sign-out). */
  async close() {
    const db = this.db;
    this.db = void 0;
    if (db) (await db).close();
  }
  open() {
    this.db ?? (this.db = new Promise((resolve, reject) => {
      const factory = this.factory ?? globalThis.indexedDB;
      if (!factory) return reject(new TypeError("no indexedDB here: use KeyValueOutboxStore"));
      const req = factory.open(this.name, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(IDB_STORE)) req.result.createObjectStore(IDB_STORE, { keyPath: "client_msg_id" });
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error("the outbox database is held open by an older version of this app"));
    }));
    this.db.catch(() => {
      this.db = void 0;
    });
    return this.db;
  }
  async run(mode, op) {
    const db = await this.open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(IDB_STORE, mode, { durability: "strict" });
      const req = op(tx.objectStore(IDB_STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error ?? req.error);
      tx.onabort = () => reject(tx.error ?? new Error("the outbox transaction was aborted"));
    });
  }
};

// src/uploads.ts
var TUS_VERSION = "1.0.0";
var OFFSET_STREAM = "application/offset+octet-stream";
var MIN_UPLOAD_PIECE = 16384;
var DEFAULT_CHUNK = 1024 * 1024;
var UPLOAD_LIMIT_WAIT_MS = 5e3;
async function uploadAttachment(baseUrl, token, source, opts = {}) {
  const total = sizeOf(source);
  if (total === 0) throw new HubError({ code: "bad_request", message: "an upload has at least 1 byte" });
  if (opts.maxBytes !== void 0 && total > opts.maxBytes) {
    throw new HubError({ code: "too_large", message: `a file of ${total} bytes is over the limit of ${opts.maxBytes} bytes` });
  }
  const chunk = Math.max(MIN_UPLOAD_PIECE, opts.chunkSize ?? DEFAULT_CHUNK);
  const maxTries = opts.maxTries ?? 5;
  const http = new Http(baseUrl, token, opts.fetch, opts.signal);
  const signal = opts.signal;
  let id = opts.uploadId;
  let offset = void 0;
  let failures = 0;
  const failed = async (err) => {
    throwIfAborted(signal);
    if (!retryable(err) || ++failures >= maxTries) throw err;
    const hint = err instanceof HubError ? err.retryAfterMs : void 0;
    const wait = err instanceof HubError && err.code === "upload_limit" ? Math.max(hint ?? UPLOAD_LIMIT_WAIT_MS, 1) : void 0;
    await sleep(wait ?? backoffDelay(failures - 1, { random: opts.random, retryAfterMs: hint }), signal);
    offset = void 0;
  };
  for (; ; ) {
    throwIfAborted(signal);
    try {
      if (id === void 0) {
        const first = await readRange(source, 0, Math.min(total, chunk));
        const created = await http.create(total, opts.name, first);
        id = created.id;
        offset = created.offset;
        await opts.onCreated?.({ id, expiresAt: created.expiresAt });
        failures = 0;
        opts.onProgress?.({ sent: offset, total });
        if (offset === total && created.upload?.state === "stored") return created.upload;
        continue;
      }
      if (offset === void 0) {
        offset = await http.offset(id);
      }
      if (offset >= total) return await http.status(id);
      const end = Math.min(total, offset + chunk);
      const next = await http.patch(id, offset, await readRange(source, offset, end));
      if (next > offset) failures = 0;
      offset = next;
      opts.onProgress?.({ sent: offset, total });
    } catch (err) {
      if (err instanceof HubError && err.code === "not_found" && id !== void 0 && !signal?.aborted) {
        if (++failures >= maxTries) throw err;
        id = void 0;
        continue;
      }
      await failed(err);
    }
  }
}
async function uploadMaxSize(baseUrl, opts = {}) {
  const res = await fetchOf2(opts.fetch)(trim(baseUrl) + "/v1/uploads", { method: "OPTIONS", headers: {} });
  if (res.status !== 204 && res.status !== 200) throw await errorOf(res);
  const max = Number(res.headers.get("tus-max-size"));
  if (!Number.isSafeInteger(max) || max <= 0) throw new HubError({ code: "internal", message: "no Tus-Max-Size in the answer" });
  return max;
}
function uploadStatus(baseUrl, token, id, opts = {}) {
  return new Http(baseUrl, token, opts.fetch, opts.signal).status(id);
}
async function deleteUpload(baseUrl, token, id, opts = {}) {
  const res = await fetchOf2(opts.fetch)(`${trim(baseUrl)}/v1/uploads/${encodeURIComponent(id)}`, {
    method: "DELETE",
    headers: tusHeaders(token)
  });
  if (res.status !== 204) throw await errorOf(res);
}
async function readAttachment(baseUrl, token, attachment, opts = {}) {
  const path = typeof attachment !== "string" ? attachment.url ?? `/v1/attachments/${encodeURIComponent(attachment.id)}` : attachment.startsWith("/") ? attachment : `/v1/attachments/${encodeURIComponent(attachment)}`;
  const url = trim(baseUrl) + (opts.thumbnail && !path.endsWith("/thumbnail") ? `${path}/thumbnail` : path);
  const headers = { authorization: `Bearer ${token}` };
  if (opts.range) headers["range"] = `bytes=${opts.range.start}-${opts.range.end ?? ""}`;
  const res = await fetchOf2(opts.fetch)(url, { method: "GET", headers, ...opts.signal ? { signal: opts.signal } : {} });
  if (res.status !== 200 && res.status !== 206) throw await errorOf(res);
  const range = res.headers.get("content-range");
  return {
    bytes: new Uint8Array(await res.arrayBuffer()),
    contentType: res.headers.get("content-type") ?? "application/octet-stream",
    status: res.status,
    ...range ? { contentRange: range } : {}
  };
}
var Http = class {
  constructor(baseUrl, token, fetch, signal) {
    this.baseUrl = baseUrl;
    this.token = token;
    this.signal = signal;
    __publicField(this, "fetch");
    this.fetch = fetchOf2(fetch);
  }
  call(method, path, headers, body) {
    return this.fetch(trim(this.baseUrl) + path, {
      method,
      headers: { ...tusHeaders(this.token), ...headers },
      ...body ? { body } : {},
      ...this.signal ? { signal: this.signal } : {}
    });
  }
  async create(length, name, first) {
    const headers = { "upload-length": String(length), "content-type": OFFSET_STREAM };
    if (name !== void 0) headers["upload-metadata"] = `filename ${base64(new TextEncoder().encode(name))}`;
    const res = await this.call("POST", "/v1/uploads", headers, first);
    if (res.status !== 201) throw await errorOf(res);
    const text = await res.text();
    const upload = text ? JSON.parse(text).attachment : void 0;
    const location = res.headers.get("location");
    const id = upload?.id ?? location?.split("/").pop();
    if (!id) throw new HubError({ code: "internal", message: "the creation answered no upload id" });
    const expires = res.headers.get("upload-expires");
    return { id, offset: offsetOf(res), expiresAt: expires ? Date.parse(expires) : upload?.expires_at, upload };
  }
  async offset(id) {
    const res = await this.call("HEAD", `/v1/uploads/${encodeURIComponent(id)}`, {});
    if (res.status !== 200) throw await errorOf(res);
    return offsetOf(res);
  }
  async patch(id, offset, bytes) {
    const res = await this.call("PATCH", `/v1/uploads/${encodeURIComponent(id)}`, { "upload-offset": String(offset), "content-type": OFFSET_STREAM }, bytes);
    if (res.status !== 204) throw await errorOf(res);
    return offsetOf(res);
  }
  async status(id) {
    const res = await this.call("GET", `/v1/uploads/${encodeURIComponent(id)}`, {});
    if (res.status !== 200) throw await errorOf(res);
    return JSON.parse(await res.text()).attachment;
  }
};
function tusHeaders(token) {
  return { "tus-resumable": TUS_VERSION, authorization: `Bearer ${token}` };
}
function offsetOf(res) {
  const offset = Number(res.headers.get("upload-offset"));
  if (!Number.isSafeInteger(offset) || offset < 0) throw new HubError({ code: "internal", message: "no Upload-Offset in the answer" });
  return offset;
}
var STATUS_CODES = {
  400: "bad_request",
  401: "unauthorized",
  404: "not_found",
  409: "conflict",
  412: "precondition_failed",
  413: "too_large",
  415: "unsupported_media",
  429: "upload_limit",
  503: "unavailable"
};
async function errorOf(res) {
  let body;
  try {
    const text = await res.text();
    body = text ? JSON.parse(text) : void 0;
  } catch {
  }
  if (body?.error?.code) return new HttpStatusError(res.status, body.error);
  return new HttpStatusError(res.status, { code: STATUS_CODES[res.status] ?? (res.status >= 500 ? "unavailable" : "internal"), message: `HTTP ${res.status}` });
}
var HttpStatusError = class extends HubError {
  constructor(status, frame) {
    super(frame);
    this.status = status;
  }
};
function retryable(err) {
  if (err instanceof HttpStatusError) {
    if (err.status >= 500) return true;
    if (err.code === "conflict") return true;
    return err.code === "upload_limit" && (err.retryAfterMs ?? 0) <= 6e4;
  }
  if (err instanceof HubError) return false;
  return err instanceof Error && (err.name === "TypeError" || err.name === "FetchError");
}
function sizeOf(source) {
  return source instanceof Uint8Array ? source.byteLength : source.size;
}
async function readRange(source, start, end) {
  if (source instanceof Uint8Array) return source.subarray(start, end);
  return new Uint8Array(await source.slice(start, end).arrayBuffer());
}
function fetchOf2(custom) {
  const f = custom ?? globalThis.fetch;
  if (!f) throw new TypeError("no fetch: pass one in the options");
  return f;
}
function trim(baseUrl) {
  return baseUrl.replace(/\/+$/, "");
}
function throwIfAborted(signal) {
  if (signal?.aborted) throw signal.reason ?? abortError();
}
function abortError() {
  const err = new Error("the upload was aborted");
  err.name = "AbortError";
  return err;
}
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? abortError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason ?? abortError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
var BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
function base64(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const [a, b, c] = [bytes[i], bytes[i + 1], bytes[i + 2]];
    const n = a << 16 | (b ?? 0) << 8 | (c ?? 0);
    out += BASE64[n >> 18 & 63] + BASE64[n >> 12 & 63];
    out += b === void 0 ? "=" : BASE64[n >> 6 & 63];
    out += c === void 0 ? "=" : BASE64[n & 63];
  }
  return out;
}

// src/push.ts
var MemoryPushStateStore = class {
  constructor() {
    __publicField(this, "value", null);
  }
  load() {
    return this.value;
  }
  save(fingerprint2) {
    this.value = fingerprint2;
  }
};
var PushRegistrar = class {
  constructor(client, options = {}) {
    this.client = client;
    __publicField(this, "desired");
    /** A fingerprint the hub refused as malformed: not sent again until the app sets another. */
    __publicField(this, "refused");
    __publicField(this, "chain", Promise.resolve());
    __publicField(this, "off");
    __publicField(this, "store");
    /** The last registration the hub answered on this client. */
    __publicField(this, "registration");
    this.store = options.store ?? new MemoryPushStateStore();
    const onError = options.onError ?? (() => {
    });
    this.off = [
      client.on("state", (state) => {
        if (state === "connected") this.sync().catch(onError);
      }),
      client.on("closed", () => {
        this.registration = void 0;
        this.enqueue(async () => this.store.save(null)).catch(onError);
      })
    ];
  }
  /**
   * Sets the registration the app wants (`null`: none). Resolves once the hub has it when the
   * client is connected; otherwise after the next `auth.ok` (with `undefined` now). Rejects with
   * `HubError` (`bad_request` naming the field, `unauthorized`) or `ConnectionLost`.
   */
  set(registration) {
    this.desired = registration;
    return this.sync();
  }
  /** Stops following the client. */
  dispose() {
    for (const off of this.off) off();
  }
  sync() {
    return this.enqueue(async () => {
      const desired = this.desired;
      if (desired === void 0 || this.client.state !== "connected") return void 0;
      const wanted = desired === null ? null : fingerprint(desired);
      const current = await this.store.load();
      if (wanted === current || wanted !== null && wanted === this.refused) return this.registration;
      if (wanted === null) {
        await this.client.request({ type: "push.unregister" });
        this.registration = void 0;
        await this.store.save(null);
        return void 0;
      }
      try {
        const reply = await this.client.request({ type: "push.register", ...desired });
        this.registration = reply.registration;
        await this.store.save(wanted);
        return reply.registration;
      } catch (err) {
        if (err instanceof HubError && err.code === "bad_request") this.refused = wanted;
        throw err;
      }
    });
  }
  enqueue(work) {
    const next = this.chain.then(work, work);
    this.chain = next.catch(() => {
    });
    return next;
  }
};
function pushFingerprint(r) {
  return fingerprint(r);
}
function fingerprint(r) {
  const choices = { preview: r.preview ?? false, language: r.language ?? "fa" };
  if (r.provider === "webpush") return JSON.stringify([r.provider, r.endpoint, r.keys.p256dh, r.keys.auth, choices.preview, choices.language]);
  return JSON.stringify([r.provider, r.token, r.provider === "apns" ? r.environment ?? "production" : null, choices.preview, choices.language]);
}
async function call2(baseUrl, method, path, body, opts = {}) {
  const f = opts.fetch ?? globalThis.fetch;
  if (!f) throw new TypeError("no fetch: pass one in the options");
  const headers = {};
  if (body !== void 0) headers["content-type"] = "application/json";
  if (opts.token) headers["authorization"] = `Bearer ${opts.token}`;
  const res = await f(baseUrl.replace(/\/+$/, "") + path, { method, headers, ...body !== void 0 ? { body: JSON.stringify(body) } : {} });
  const text = await res.text();
  const parsed = text ? JSON.parse(text) : void 0;
  if (res.status >= 200 && res.status < 300) return parsed;
  const error = parsed?.error;
  throw new HubError(error ?? { code: "internal", message: `HTTP ${res.status}` });
}
async function registerPush(baseUrl, token, registration, opts = {}) {
  const reply = await call2(baseUrl, "PUT", "/v1/push", registration, { ...opts, token });
  return reply.registration;
}
async function unregisterPush(baseUrl, token, opts = {}) {
  await call2(baseUrl, "DELETE", "/v1/push", void 0, { ...opts, token });
}
async function vapidPublicKey(baseUrl, opts = {}) {
  return (await call2(baseUrl, "GET", "/v1/push/vapid", void 0, opts)).public_key;
}
export {
  ConnectionLost,
  HubClient,
  HubError,
  IndexedDbOutboxStore,
  KeyValueOutboxStore,
  KeyValueTokenStore,
  LONG_BACKOFF,
  MIN_UPLOAD_PIECE,
  MemoryOutboxStore,
  MemoryPushStateStore,
  MemoryTokenStore,
  NORMAL_BACKOFF,
  Outbox,
  PushRegistrar,
  Receipts,
  SUBPROTOCOL,
  agentLogin,
  backoffCeiling,
  backoffDelay,
  codecFor,
  deleteUpload,
  isReplyOrError,
  jsonCodec,
  me,
  msgpackCodec,
  newClientMsgId,
  pushFingerprint,
  readAttachment,
  registerPush,
  requestCode,
  signIn,
  signOut,
  unregisterPush,
  uploadAttachment,
  uploadMaxSize,
  uploadStatus,
  vapidPublicKey
};
