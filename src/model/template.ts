// Chat templates come from model folders and hub repos, so they are untrusted code: rendering is bounded
// in evaluation steps, nesting depth, the size of what it builds and time, and a template that passes a
// bound gets a typed error (TEMPLATE_LIMIT) instead of hanging or exhausting memory (a loop over
// range(100000000) once ran 57 s into V8's "heap out of memory").
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { templateLimit } from '../errors.js';

export interface RenderLimits {
  /** Expressions and statements evaluated, blocks run, and loop items (counted as the loop starts). */
  steps: number;
  /** Characters of text produced, counted at every block (nested output counts again) and per value. */
  chars: number;
  /** Elements of any list (range() included). */
  items: number;
  /** Nesting of evaluations (macro recursion). */
  depth: number;
  /** Wall-clock time. */
  ms: number;
}

/**
 * Far above what real templates need, far below what would stall a page or fill the heap. A Qwen-style
 * template takes about 47 steps a message (93k for 2,000 messages, 0.2 s); an iteration of an empty loop
 * takes 4. On a loaded 2-core machine the step bound stops a runaway loop within about 3 s; the clock
 * backs it up where steps cost more (filters over large values).
 */
export const RENDER_LIMITS: Readonly<RenderLimits> = {
  steps: 1_000_000,
  chars: 32 * 1024 * 1024,
  items: 1_000_000,
  depth: 500,
  ms: 10_000,
};

// The package's Interpreter and Environment typings do not resolve under NodeNext (extensionless
// imports in its .d.ts), so the part used here is typed by hand.
interface Value {
  value: unknown;
}
type Evaluate = (node: unknown, environment: JinjaEnvironment) => Value;
interface JinjaEnvironment {
  set(name: string, value: unknown): void;
}
const JinjaInterpreter = Interpreter as new (
  env: JinjaEnvironment,
) => { run(program: unknown): Value; evaluate(node: unknown, environment: JinjaEnvironment): Value };

const limitError = (what: string) => templateLimit(`the chat template exceeded its bound of ${what} while rendering`);

/** A For statement as the parser builds it: the loop's items come from `iterable` (or its `lhs`, filtered). */
interface Node {
  type: string;
  iterable?: { type: string; lhs?: unknown };
}

/**
 * What a loop item costs beyond the block it runs, in steps: the library gives each item a scope and the
 * loop variables, which take about as long as three evaluations (measured: 2 us a step of a Qwen-style
 * template, 6 us an iteration of an empty loop, on a loaded 2-core machine).
 */
const LOOP_ITEM_STEPS = 3;

/** Elements of a list, or entries of a mapping (a loop over it iterates its keys). */
const sizeOf = (v: unknown) => (Array.isArray(v) ? v.length : v instanceof Map ? v.size : 0);

/**
 * The interpreter of @huggingface/jinja with its work counted and checked: every evaluation, every block
 * run and, when a loop starts, its items (so that a loop with an empty body is counted before it runs).
 */
class BoundedInterpreter extends JinjaInterpreter {
  private steps = 0;
  private nextClockCheck = 0;
  private depth = 0;
  private chars = 0;
  private readonly deadline: number;
  /** The nodes whose value a loop iterates. */
  private readonly loopItems = new WeakSet<object>();

  constructor(
    env: JinjaEnvironment,
    private readonly limits: RenderLimits,
  ) {
    super(env);
    this.deadline = performance.now() + limits.ms;
    // blocks (loop bodies, branches) build the output; the library keeps the method private, so it is
    // wrapped here rather than overridden
    const self = this as unknown as { evaluateBlock: Evaluate };
    const block = self.evaluateBlock.bind(this);
    self.evaluateBlock = (statements, environment) => {
      this.step(1);
      const out = block(statements, environment);
      this.chars += (out.value as string).length;
      if (this.chars > this.limits.chars) throw limitError(`${this.limits.chars} characters of output`);
      return out;
    };
  }

  override evaluate(statement: unknown, environment: JinjaEnvironment): Value {
    this.step(1);
    const node = statement as Node | undefined;
    if (node?.type === 'For' && node.iterable) {
      this.loopItems.add((node.iterable.type === 'SelectExpression' ? node.iterable.lhs : node.iterable) as object);
    }
    if (++this.depth > this.limits.depth) throw limitError(`${this.limits.depth} nested evaluations`);
    try {
      const value = super.evaluate(statement, environment);
      const v = value.value;
      if (typeof v === 'string' && v.length > this.limits.chars) {
        throw limitError(`${this.limits.chars} characters in one value`);
      }
      if (Array.isArray(v) && v.length > this.limits.items) throw limitError(`${this.limits.items} list items`);
      if (node && this.loopItems.has(node)) this.step(LOOP_ITEM_STEPS * sizeOf(v));
      return value;
    } finally {
      this.depth--;
    }
  }

  private step(count: number): void {
    this.steps += count;
    if (this.steps > this.limits.steps) throw limitError(`${this.limits.steps} evaluation steps`);
    if (this.steps >= this.nextClockCheck) {
      this.nextClockCheck = this.steps + 256;
      if (performance.now() > this.deadline) throw limitError(`${this.limits.ms} ms`);
    }
  }
}

/** Python's range(), refusing lists longer than `items` before building them. */
function boundedRange(items: number) {
  return (start: number, stop?: number, step = 1): number[] => {
    if (stop === undefined) [start, stop] = [0, start];
    if (step === 0) throw new Error('range() step must not be zero');
    const length = Math.max(0, Math.ceil((stop - start) / step));
    if (length > items) throw limitError(`${items} list items`);
    return Array.from({ length }, (_, i) => start + i * step);
  };
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** strftime_now(format) as @huggingface/jinja provides it (Llama 3.1+ templates print the date). */
function strftimeNow(format: string): string {
  const d = new Date();
  const month = (style: 'long' | 'short') => new Intl.DateTimeFormat(undefined, { month: style }).format(d);
  const fields: Record<string, () => string> = {
    '%Y': () => String(d.getFullYear()),
    '%m': () => pad2(d.getMonth() + 1),
    '%d': () => pad2(d.getDate()),
    '%b': () => month('short'),
    '%B': () => month('long'),
    '%H': () => pad2(d.getHours()),
    '%M': () => pad2(d.getMinutes()),
    '%%': () => '%',
  };
  return format.replace(/%[YmdbBHM%]/g, (f) => fields[f]!());
}

/** A parsed chat template, rendered under RenderLimits. */
export class ChatTemplate {
  private readonly template: Template;

  /** Throws the parser's error for a template that does not parse. */
  constructor(source: string) {
    this.template = new Template(source);
  }

  /** Renders with `variables` (messages, add_generation_prompt, special tokens); TEMPLATE_LIMIT past a bound. */
  render(variables: Record<string, unknown>, limits: RenderLimits = RENDER_LIMITS): string {
    const env: JinjaEnvironment = new Environment();
    const globals: Record<string, unknown> = {
      false: false,
      true: true,
      none: null,
      False: false,
      True: true,
      None: null,
      raise_exception: (message: string) => {
        throw new Error(message);
      },
      range: boundedRange(limits.items),
      strftime_now: strftimeNow,
      ...variables,
    };
    for (const [name, value] of Object.entries(globals)) env.set(name, value);
    return new BoundedInterpreter(env, limits).run(this.template.parsed).value as string;
  }
}
