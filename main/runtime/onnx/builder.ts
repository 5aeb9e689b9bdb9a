import fs from 'node:fs';
import { AttrType, DataType, modelProtoType } from './proto.ts';

/** A dimension: a fixed size or a symbolic name (batch, seq). */
export type Dim = number | string;

type AttrValue =
  | { type: typeof AttrType.INT; i: number }
  | { type: typeof AttrType.FLOAT; f: number }
  | { type: typeof AttrType.INTS; ints: number[] }
  | { type: typeof AttrType.FLOATS; floats: number[] }
  | { type: typeof AttrType.STRING; s: Uint8Array };

/** Typed attribute constructors: ONNX distinguishes int and float attributes, JS numbers do not. */
export const attr = {
  i: (i: number): AttrValue => ({ type: AttrType.INT, i }),
  f: (f: number): AttrValue => ({ type: AttrType.FLOAT, f }),
  ints: (ints: number[]): AttrValue => ({ type: AttrType.INTS, ints }),
  floats: (floats: number[]): AttrValue => ({ type: AttrType.FLOATS, floats }),
  s: (s: string): AttrValue => ({ type: AttrType.STRING, s: new TextEncoder().encode(s) }),
};

interface ValueInfo {
  name: string;
  type: { tensorType: { elemType: number; shape: { dim: ({ dimValue: number } | { dimParam: string })[] } } };
}

interface TensorInit {
  name: string;
  dims: number[];
  dataType: number;
  rawData?: Uint8Array;
  /** TensorProto.DataLocation: 1 (EXTERNAL) when the bytes live in the external data file. */
  dataLocation?: number;
  externalData?: { key: string; value: string }[];
}

/**
 * Where large initializers go instead of the protobuf (which cannot exceed 2 GiB): an open file that
 * receives each one as it is added, so a model is never held in memory twice.
 */
export interface ExternalDataSink {
  /** File descriptor open for writing; the caller opens and closes it. */
  fd: number;
  /** The file's name as recorded in the model, relative to the model file. */
  location: string;
  /** Initializers of at least this many bytes go to the file; smaller ones stay inline. */
  minBytes: number;
}

// Aligned offsets let a runtime that maps the file read every tensor in place.
const EXTERNAL_ALIGNMENT = 64;

function valueInfo(name: string, elemType: number, dims: Dim[]): ValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * Builds an ONNX graph node by node and serialises it. Value names are generated, so graph code reads
 * as a sequence of operations (`const y = g.op('MatMul', [a, b])`) rather than string bookkeeping.
 */
export class GraphBuilder {
  private readonly nodes: object[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly initializers: TensorInit[] = [];
  private counter = 0;
  private externalOffset = 0;

  constructor(
    readonly name: string,
    private readonly external?: ExternalDataSink,
  ) {}

  private addInitializer(
    name: string,
    dims: number[],
    dataType: number,
    bytes: Uint8Array,
    inline = false,
  ): void {
    const ext = this.external;
    if (!ext || inline || bytes.byteLength < ext.minBytes) {
      this.initializers.push({ name, dims, dataType, rawData: bytes });
      return;
    }
    const offset = Math.ceil(this.externalOffset / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
    for (let done = 0; done < bytes.byteLength;) {
      done += fs.writeSync(ext.fd, bytes, done, bytes.byteLength - done, offset + done);
    }
    this.externalOffset = offset + bytes.byteLength;
    this.initializers.push({
      name,
      dims,
      dataType,
      dataLocation: 1,
      externalData: [
        { key: 'location', value: ext.location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(bytes.byteLength) },
      ],
    });
  }

  private fresh(prefix: string): string {
    this.counter += 1;
    return `${prefix}_${this.counter}`;
  }

  input(name: string, dims: Dim[], elemType: number = DataType.FLOAT): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declares `value` as a graph output called `name` (an Identity bridges differing names). */
  output(name: string, value: string, dims: Dim[], elemType: number = DataType.FLOAT): void {
    if (value !== name)
      this.nodes.push({ opType: 'Identity', input: [value], output: [name], name: `out_${name}` });
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** One node with one output. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.opN(opType, inputs, 1, attrs)[0];
  }

  /** One node with several outputs (Split, TopK). An empty input name marks an omitted optional input. */
  opN(opType: string, inputs: string[], nOutputs: number, attrs: Record<string, AttrValue> = {}): string[] {
    const base = this.fresh(opType.toLowerCase());
    const output = Array.from({ length: nOutputs }, (_, k) => (nOutputs === 1 ? base : `${base}_${k}`));
    const attribute = Object.entries(attrs).map(([name, v]) => ({ name, ...v }));
    this.nodes.push({ opType, input: inputs, output, name: base, attribute });
    return output;
  }

  /** A floating-point constant stored as an initializer: float32 unless `elemType` is DataType.DOUBLE. */
  constFloat(
    values: ArrayLike<number>,
    dims: number[],
    elemType: typeof DataType.FLOAT | typeof DataType.DOUBLE = DataType.FLOAT,
  ): string {
    const name = this.fresh('cf');
    const data = elemType === DataType.DOUBLE ? Float64Array.from(values) : Float32Array.from(values);
    this.addInitializer(name, dims, elemType, bytesOf(data));
    return name;
  }

  /** An int64 constant (shapes, axes, indices). */
  constInt64(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh('ci');
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    // Always inline: onnxruntime's shape inference reads shapes and axes at load, before external data.
    this.addInitializer(name, dims, DataType.INT64, bytesOf(data), true);
    return name;
  }

  /** A named float32 initializer (weights baked into an exported model); external when the sink takes it. */
  initializer(name: string, data: Float32Array, dims: number[]): string {
    this.addInitializer(name, dims, DataType.FLOAT, bytesOf(data));
    return name;
  }

  /**
   * A named initializer of already encoded elements (16-bit weights stored as the checkpoint holds them);
   * external when the sink takes it.
   */
  rawInitializer(name: string, bytes: Uint8Array, dims: number[], elemType: number): string {
    this.addInitializer(name, dims, elemType, bytes);
    return name;
  }

  /**
   * Serialised ModelProto. Opset 21 (IR 10) gives LayerNormalization and Gelu with the tanh approximation;
   * a graph for older runtimes (the exported decoder) asks for less.
   */
  build(opset = 21, irVersion = 10): Uint8Array {
    const Model = modelProtoType();
    const message = Model.fromObject({
      irVersion,
      producerName: 'rankwise',
      producerVersion: '0.1.0',
      opsetImport: [{ domain: '', version: opset }],
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    });
    return Model.encode(message).finish();
  }
}
