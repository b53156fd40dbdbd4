// The prompt-injection detector's cues: weighted phrases and literal markers, compiled once per VM
// (at configure, by the first policy that turns `injection` on) into tables detect-injection.ts
// reads a text against. docs/filters/ai-guard.md explains the scoring for operators.
//
// Phrase syntax: words separated by spaces, each a slot; a slot "a/b/c" takes any of its
// alternatives; an alternative ending in * takes any word starting with it; the slot "~" skips zero
// to three words. Words are case-folded (lib/regex.ts foldCase: ASCII, Latin-1, Greek, Cyrillic).
// A negative weight is evidence of a text that talks ABOUT injection (a question, a training text).
// Literals are matched as they are (folded) anywhere: role and template markers, and phrases of
// languages written without spaces.
import { foldString } from "../../lib/regex";

const PHRASES = [
  // Instruction override.
  "ignore/disregard/forget/overrid*/bypass/skip/drop/abandon/discard ~ instructions/instruction/directions/directives/rules/guidelines/guardrails/restrictions/constraints/programming/prompt/prompts/policy/policies/safeguards|2.5",
  "ignore/disregard/forget ~ above/previous/prior/earlier/preceding/everything|1",
  "previous/prior/above/earlier/preceding/original/old instructions/directions/directives/rules/guidelines/prompt/prompts|1",
  "do not follow/obey ~ instructions/rules/guidelines|2",
  "new/updated/real/actual/revised/true instructions/directives/rules|1.5", "new system prompt|2",
  "your new instructions/role/directive/objective|2", "your new task|1",
  "disregard/ignore ~ request/question/task/query|1.5", "instead output/say/reply/respond/print/write|1",
  "your guardrails/guidelines/restrictions/rules/programming/safeguards/filters|1", "no longer apply/applies|1.5", "does/do not apply|1", "doesn/don t apply|1",
  "from now on|1.5", "instead you will/must/should|1", "override|0.5",
  "stop being|1", "no longer ~ assistant/bound/restricted/constrained|2",
  // Role hijack and jailbreak templates.
  "you are now|1.5", "you were told/given/instructed ~ before/earlier/previously/verbatim|1.5", "you were given|1",
  "instructions/rules/guidelines are/were cancelled/canceled/void/revoked/lifted/suspended|2", "the developer gave you|1.5",
  "exact/full/complete/entire original/initial/system/hidden instructions/prompt|1.5", "word for word|1", "act as/like ~ unrestricted/unfiltered/uncensored/jailbroken/evil|2.5",
  "pretend ~ no/without restrictions/rules/limits/guidelines/filters|2.5", "pretend ~ policy/policies/rules/guidelines|1.5",
  "developer/dev/debug mode|1.5", "god/admin/sudo/unrestricted/jailbreak/jailbroken/dan mode|2", "mode enabled|1",
  "do anything now|2.5", "dan|1", "jailbreak*|1.5", "jailbroken|2",
  "unfiltered/uncensored/unrestricted|1.5", "no/without ~ restrictions/limitations/filters/guidelines/censorship|1.5",
  "no/without ethical/moral ~ guidelines/constraints/principles|2", "ethics|0.5",
  "not/never bound by|2", "free from/of ~ rules/restrictions/guidelines/policies/constraints|2",
  "never/not refuse|2", "cannot refuse|1.5", "can/won t refuse|1.5", "stay in character|1.5",
  "openai/anthropic/google content/usage/safety policy/policies|1.5", "content policy|1",
  "answer as both|2", "two responses|1", "opposite mode|2", "evil confidant|2.5", "simulate ~ without/no|1",
  "hypothetical ~ no/without restrictions/rules|1.5",
  // System prompt extraction.
  "reveal/print/show/output/repeat/display/leak/dump/disclose/expose/recite/spell ~ system/initial/hidden/secret/original/developer/full prompt/prompts/instructions/message/rules|2",
  "print/reveal/show/output/dump/repeat/leak your instructions/prompt/rules|2", "your system/initial/original/hidden/secret prompt/instructions/message|1.5",
  "begin/start your reply/response/answer with|1.5", "must reveal|1", "confidential/private/internal context/data/information/instructions|1", "system prompt|0.5",
  "repeat/print/output/copy ~ words/text/everything/all above|2.5", "above verbatim|2", "verbatim|0.5",
  "everything/text/all before this|1.5", "starting with you are|2", "what were you told|2",
  "beginning of ~ conversation/prompt/context|1",
  // Messages planted in data a model reads (tool results, documents, web pages).
  "note/message/instructions/attention to/for ~ ai/assistant/llm/model/agent/chatbot|2.5",
  "if you are/re ~ ai/llm/assistant/model/agent/bot|2.5", "assistant/ai/agent/model now|1", "ai/llm/language model reading this|2.5",
  "dear ai/assistant/llm|1.5", "hey/attention assistant/ai/claude/chatgpt/gemini|1.5",
  "when/while summarizing/summarising/reading/processing this|2",
  "do/don not/t tell/inform/mention/alert/notify ~ user|2.5", "without telling/informing/alerting/notifying ~ user|2.5",
  "tell/inform the user|0.5", "secretly/silently/quietly|1",
  "now call/invoke/use/run/execute|1.5", "call/invoke/execute/trigger the ~ tool/function|1",
  "run/execute the following command/commands/code|1.5",
  "send/forward/email/upload/post/transfer ~ credentials/password/passwords/secrets/tokens/keys/history/conversation/emails/files/data|1.5",
  "api key/keys|0.5", "exfiltrat*|1.5",
  "append/include/add/encode/insert ~ conversation/chat/history/data/secret/secrets/password/token/key/summary ~ url/link/query/image|2.5",
  "render/display/show/include/output ~ image/markdown|1",
  "important/urgent/critical instructions/instruction/notice/update|1",
  "end of ~ prompt/instructions/context/document/input|1.5", "system override/update/notice/message|2",
  // Encoded payloads.
  "base64|1", "rot13|1", "decode/decrypt ~ and/then follow/execute/run/obey/do|2.5",
  "follow/execute/obey the decoded/hidden|2",
  // German, French, Spanish, Portuguese, Italian, Russian.
  "ignoriere/ignorieren/ignorier/vergiss/vergessen/missachte ~ anweisungen/anweisung/instruktionen/regeln/vorgaben|3",
  "vorherigen/bisherigen/obigen/vorigen anweisungen/instruktionen/regeln|1.5", "du bist jetzt|1.5", "systemprompt/systemanweisung|1.5",
  "ignorez/ignorer/oublie/oubliez ~ instructions/consignes/règles|2.5", "ignore ~ consignes/règles|2.5",
  "instructions/consignes précédentes/antérieures|1", "tu es maintenant|1.5", "prompt/invite système|1.5",
  "ignora/ignore/olvida/olvides/ignoren ~ instrucciones/reglas/indicaciones|3",
  "instrucciones anteriores/previas|1.5", "ahora eres|1.5", "prompt/instrucciones del sistema|1.5",
  "ignore/ignora/esqueça/esqueca ~ instruções/instrucoes/regras|3", "instruções/instrucoes anteriores|1.5", "agora você/voce é/e|1.5",
  "ignora/dimentica ~ istruzioni/regole|3", "istruzioni precedenti|1.5", "ora sei|1",
  "игнорируй/игнорируйте/игнорировать/забудь/забудьте ~ инструкции/указания/правила/инструкцию|3",
  "предыдущие инструкции/указания|1.5", "теперь ты|1.5", "системный промпт|2",
  // Talking about injection rather than doing it.
  "prompt injection/injections|-2", "how do/can/should/could i/we ~ detect/prevent/defend/mitigate/block/stop/protect/catch|-2",
  "what is/are ~ injection/injections/jailbreak/jailbreaks|-1.5", "for example|-0.5", "such as|-0.5",
  "attacker/attackers/adversary/adversaries|-1", "attack/attacks|-0.5", "security awareness/training|-1.5", "defense/defenses/defend/mitigation/mitigate|-1",
  "the phrase/term/expression|-1", "translate/traduis/traduire/traduza/traduci/übersetze/traduce|-1", "meaning of|-0.5", "classify/classifier/detect/detection|-0.5",
];

const LITERALS = [
  "<|im_start|>system|3", "<|im_start|>|1.5", "<|im_end|>|1", "<|system|>|2.5", "<|user|>|1", "<|assistant|>|1",
  "<|start_header_id|>|2.5", "<|endoftext|>|2", "[inst]|1.5", "[/inst]|1.5", "<<sys>>|2.5",
  "### instruction|2", "### system|2", "### new|1.5", "### response|1", "[system|2", "<system>|2", "</system>|2",
  "<instructions>|1", "(system|1", "{{system|1.5",
  "忽略之前|3", "忽略以上|3", "忽略所有|2", "忽略前面|3", "之前的指令|1.5", "系统提示|1.5", "你现在是|1",
  "指示を無視|3", "以前の指示|1.5", "システムプロンプト|1.5",
];

/** Weights of the structural cues detect-injection.ts finds by itself. */
export const ROLE_SYSTEM_WEIGHT: f64 = 1.5; // a line "system:" / "developer:" in user or tool text
export const ROLE_ASSISTANT_WEIGHT: f64 = 0.75; // a line "assistant:" (pasted transcripts have them too)
export const BASE64_WEIGHT: f64 = 1.0; // a run of 120+ base64 characters with upper, lower and digits
export const MARKDOWN_EXFIL_WEIGHT: f64 = 1.5; // ![..](http...?..=..): an image URL carrying data
export const BASE64_RUN: i32 = 120;

export class Slot {
  alts: Array<string> = [];
  prefix: Array<bool> = [];
  gap: bool = false;
}

export class Cue {
  slots: Array<Slot> = [];
  constructor(public id: i32, public weight: f64) {}
}

export class Literal {
  constructor(public id: i32, public text: string, public weight: f64) {}
}

export const BUCKETS: i32 = 64;
/** Phrase buckets are keyed by the first word's first unit and its length (longer ones share the last). */
export const LENGTHS: i32 = 16;

/** The phrase bucket of a first word: its first unit (folded) and its length. */
@inline export function phraseBucket(first: i32, len: i32): i32 {
  return (first & (BUCKETS - 1)) * LENGTHS + (len < LENGTHS ? len : LENGTHS - 1);
}

export class Lexicon {
  /** Phrase cues by the first unit and length of their first slot's alternatives (phraseBucket). */
  phrases: Array<Array<Cue>> = [];
  /** Literal cues by their first unit (c & 63); the first unit is compared before anything else. */
  literals: Array<Array<Literal>> = [];
  /** Per ASCII unit: 1 when some literal starts with it (most units start none). */
  asciiLiteral: StaticArray<u8> = new StaticArray<u8>(128);
  /** Cue ids: phrases, then literals, then the structural cues (SPECIAL_*). */
  count: i32 = 0;
  weights: Array<f64> = [];
  roleSystem: i32 = 0;
  roleAssistant: i32 = 0;
  base64: i32 = 0;
  markdown: i32 = 0;
}

let lexicon: Lexicon | null = null;

function split(entry: string): string[] {
  const bar = entry.lastIndexOf("|");
  return [foldString(entry.substring(0, bar)), entry.substring(bar + 1)];
}

/** The cue tables, built on first use (configure time) and shared by every policy of the VM. */
export function injectionLexicon(): Lexicon {
  if (lexicon !== null) return lexicon as Lexicon;
  const lx = new Lexicon();
  for (let b = 0; b < BUCKETS * LENGTHS; b++) lx.phrases.push(new Array<Cue>());
  for (let b = 0; b < BUCKETS; b++) lx.literals.push(new Array<Literal>());
  for (let i = 0; i < PHRASES.length; i++) {
    const parts = split(PHRASES[i]);
    const cue = new Cue(lx.count++, parseFloat(parts[1]));
    lx.weights.push(cue.weight);
    const words = parts[0].split(" ");
    for (let w = 0; w < words.length; w++) {
      const slot = new Slot();
      if (words[w] == "~") slot.gap = true;
      else {
        const alts = words[w].split("/");
        for (let a = 0; a < alts.length; a++) {
          const alt = alts[a];
          const star = alt.endsWith("*");
          slot.alts.push(star ? alt.substring(0, alt.length - 1) : alt);
          slot.prefix.push(star);
        }
      }
      cue.slots.push(slot);
    }
    // A phrase is filed under each first unit and length its first slot takes (a prefix: every
    // length from its own on), once per bucket.
    const first = cue.slots[0];
    const seen = new Array<bool>(BUCKETS * LENGTHS).fill(false);
    for (let a = 0; a < first.alts.length; a++) {
      const alt = first.alts[a];
      const c = alt.charCodeAt(0);
      const top = first.prefix[a] ? LENGTHS - 1 : min(alt.length, LENGTHS - 1);
      for (let len = min(alt.length, LENGTHS - 1); len <= top; len++) {
        const b = phraseBucket(c, len);
        if (!seen[b]) lx.phrases[b].push(cue);
        seen[b] = true;
      }
    }
  }
  for (let i = 0; i < LITERALS.length; i++) {
    const parts = split(LITERALS[i]);
    const lit = new Literal(lx.count++, parts[0], parseFloat(parts[1]));
    lx.weights.push(lit.weight);
    const c = lit.text.charCodeAt(0);
    lx.literals[c & (BUCKETS - 1)].push(lit);
    if (c < 128) lx.asciiLiteral[c] = 1;
  }
  lx.roleSystem = lx.count++;
  lx.weights.push(ROLE_SYSTEM_WEIGHT);
  lx.roleAssistant = lx.count++;
  lx.weights.push(ROLE_ASSISTANT_WEIGHT);
  lx.base64 = lx.count++;
  lx.weights.push(BASE64_WEIGHT);
  lx.markdown = lx.count++;
  lx.weights.push(MARKDOWN_EXFIL_WEIGHT);
  lexicon = lx;
  return lx;
}
