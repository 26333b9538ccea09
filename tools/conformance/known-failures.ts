/** Conformance cases of listed ops that are not required to pass, each with the reason. */
export const KNOWN_FAILURES: Record<string, string> = {
  test_identity_opt: "input is an optional<sequence<tensor>>: q's IR holds tensors only",
  test_identity_sequence: "input is a sequence<tensor>: q's IR holds tensors only",
};
