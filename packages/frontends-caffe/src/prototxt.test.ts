import { describe, expect, it } from "vitest";
import { ModelFormatError } from "@q/ir";
import { parsePrototxt } from "./index.js";

describe("parsePrototxt", () => {
  it("reads comments, nested messages, repeated fields, both message forms and lists", () => {
    const o = parsePrototxt(`
# a comment
name: "net"   # trailing comment
#layer { name: "commented out" }
layer {
  name: 'a' type: "Convolution"
  bottom: "x" bottom: "y"
  convolution_param { kernel_size: 3; stride: 2, pad: 1 }
  input_param: { shape: { dim: [1, 3, 224, 224] } }
}
layer < name: "b" include { phase: TEST } >
empty {}
`);
    expect(o).toEqual({
      name: "net",
      layer: [
        {
          name: "a", type: "Convolution", bottom: ["x", "y"],
          convolution_param: { kernel_size: 3, stride: 2, pad: 1 },
          input_param: { shape: { dim: [1, 3, 224, 224] } },
        },
        { name: "b", include: { phase: "TEST" } },
      ],
      empty: {},
    });
  });

  it("decodes numbers: signs, exponents, hex, float suffix, inf and nan", () => {
    const o = parsePrototxt(`a: -2 b: 1e-5 c: .5 d: 0x1F e: 1.5f f: -inf g: inf h: nan i: +3 j: 9.999999747378752e-06 k: 2E+2`);
    expect(o.a).toBe(-2);
    expect(o.b).toBe(1e-5);
    expect(o.c).toBe(0.5);
    expect(o.d).toBe(31);
    expect(o.e).toBe(1.5);
    expect(o.f).toBe(-Infinity);
    expect(o.g).toBe(Infinity);
    expect(Number.isNaN(o.h)).toBe(true);
    expect(o.i).toBe(3);
    expect(o.j).toBe(9.999999747378752e-6);
    expect(o.k).toBe(200);
  });

  it("decodes strings: escapes, single quotes, adjacent strings, UTF-8 octal bytes", () => {
    const o = parsePrototxt(String.raw`a: "x\ny\t\"q\"\\" b: 'it\'s' c: "ab" 'cd' "ef" d: "\x41\102\u00e9" e: "\303\251"`);
    expect(o.a).toBe('x\ny\t"q"\\');
    expect(o.b).toBe("it's");
    expect(o.c).toBe("abcdef");
    expect(o.d).toBe("ABé");
    expect(o.e).toBe("é");
  });

  it("keeps enums as identifiers and booleans as booleans", () => {
    const o = parsePrototxt(`pool: MAX flag: true other: False type: CONVOLUTION`);
    expect(o).toEqual({ pool: "MAX", flag: true, other: false, type: "CONVOLUTION" });
  });

  const bad: [string, string, RegExp][] = [
    ["missing close brace", `layer {\n  name: "a"\n`, /net\.prototxt: 3:1: missing '}' for the '\{' opened at 1:7/],
    ["missing colon", `layer {\n  name "a"\n}`, /net\.prototxt: 2:8: expected ':' or '\{' after field name 'name'/],
    ["unterminated string", `name: "abc\n`, /net\.prototxt: 1:7: unterminated string/],
    ["stray character", `name: "a"\n  @`, /net\.prototxt: 2:3: unexpected character '@'/],
    ["value missing", `a: }`, /net\.prototxt: 1:4: expected a value, found '\}'/],
    ["bad number", `a: 12abc`, /net\.prototxt: 1:4: malformed number/],
    ["unclosed list", `dim: [1, 2`, /net\.prototxt: 1:11: missing '\]'/],
  ];
  for (const [what, text, msg] of bad) {
    it(`syntax error (${what}) names the file and line:column`, () => {
      let err: unknown;
      try {
        parsePrototxt(text, "net.prototxt");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ModelFormatError);
      expect((err as Error).message).toMatch(msg);
    });
  }
});
