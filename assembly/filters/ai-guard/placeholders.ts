// Typed placeholders (<EMAIL_1>) of one exchange: the same value gets the same placeholder in the
// request and in its answer, a new value the next number of its tag. For mask_and_restore the
// original of each placeholder is kept for the answer (answer-window.ts puts it back); that map
// holds only values the client itself sent, so it is bounded by the request body.

/**
 * Values remembered for their placeholder: past this many, a new value still gets the next number
 * but is not remembered (an answer that streams thousands of different addresses must not grow
 * the VM's memory, which never shrinks); it may then get another number where it comes again.
 */
const MAX_REMEMBERED: i32 = 1024;

/** The longest placeholder: '<', a 32-character tag, '_', a number, '>' (answer-window.ts holds this much). */
export const MAX_PLACEHOLDER: i32 = 48;

export class Placeholders {
  private numbers: Map<string, i32> = new Map();
  private given: Map<string, string> = new Map(); // tag NUL value -> placeholder
  /** Placeholder -> original value, for the detectors whose request action is mask_and_restore. */
  originals: Map<string, string> = new Map();

  /**
   * The placeholder of `value` found by the detector tagged `tag`; `restore` keeps its original.
   * `answer`: a value of the answer, remembered only while fewer than MAX_REMEMBERED are (a
   * request's values are all remembered: they are bounded by its body).
   */
  name(tag: string, value: string, restore: bool, answer: bool = false): string {
    const key = tag + "\0" + value;
    let ph: string;
    if (this.given.has(key)) ph = this.given.get(key);
    else {
      const n = this.numbers.has(tag) ? this.numbers.get(tag) + 1 : 1;
      this.numbers.set(tag, n);
      ph = "<" + tag + "_" + n.toString() + ">";
      if (!answer || this.given.size < MAX_REMEMBERED) this.given.set(key, ph);
    }
    if (restore) this.originals.set(ph, value);
    return ph;
  }
}
