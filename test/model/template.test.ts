// Chat templates are untrusted: a runaway template (loops, huge output, recursion, slowness) ends with
// TEMPLATE_LIMIT within its bounds instead of hanging or filling the heap (issue 11, item 4), while
// templates in the style of SmolLM2's, Llama 3's and Qwen's render long conversations exactly.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { memorySource } from '../../src/model/source.js';
import { ChatTemplate, RENDER_LIMITS } from '../../src/model/template.js';
import { type ChatMessage, TextTokenizer } from '../../src/model/tokenizer.js';
import { typedError } from '../helpers/checks.js';
import { FIXTURES } from '../helpers/stories.js';

const smolJson = JSON.parse(readFileSync(`${FIXTURES}/smollm2-135m/tokenizer.json`, 'utf8')) as unknown;
const withTemplate = (chat_template: string) => TextTokenizer.create(smolJson, { chat_template });
const hi: ChatMessage[] = [{ role: 'user', content: 'hi' }];

/** The TEMPLATE_LIMIT error `template` ends with, and how long rendering took. */
async function runaway(template: string, messages = hi) {
  const t0 = performance.now();
  const e = await typedError(() => withTemplate(template).applyChatTemplate(messages));
  return { e, ms: performance.now() - t0 };
}

// The runaway loops below run until a bound stops them: seconds on a loaded machine.
const RUNAWAY_MS = 30_000;

describe('bounded chat template rendering', () => {
  it("stops the issue's loop over range(100000000) at once, with a typed error", async () => {
    const config = { chat_template: '{% for i in range(100000000) %}{% endfor %}' };
    const files = { 'tokenizer.json': JSON.stringify(smolJson), 'tokenizer_config.json': JSON.stringify(config) };
    const tok = await TextTokenizer.load(memorySource(files, 'hostile'));
    const t0 = performance.now();
    const e = await typedError(() => tok.applyChatTemplate(hi, { addGenerationPrompt: true }));
    const ms = performance.now() - t0;
    expect(e.code).toBe('TEMPLATE_LIMIT');
    expect(e.message).toMatch(/1000000 list items/);
    expect(ms).toBeLessThan(1000);
  });

  it(
    'counts loop iterations, even of empty bodies over a list built once',
    async () => {
      // 10^9 iterations of nothing, over a list of 1000 items
      const { e, ms } = await runaway(
        '{% set xs = range(1000) %}{% for a in xs %}{% for b in xs %}{% for c in xs %}{% endfor %}{% endfor %}{% endfor %}',
      );
      expect(e.code).toBe('TEMPLATE_LIMIT');
      expect(e.message).toMatch(/1000000 evaluation steps/);
      expect(ms).toBeLessThan(RENDER_LIMITS.ms); // the step bound, not the clock
    },
    RUNAWAY_MS,
  );

  it('bounds the output: doubling a string, and a loop that prints a long message', async () => {
    const doubling = await runaway(
      "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
    );
    expect(doubling.e.code).toBe('TEMPLATE_LIMIT');
    expect(doubling.e.message).toMatch(/characters in one value/);
    const long = [{ role: 'user' as const, content: 'x'.repeat(100_000) }];
    const printing = await runaway('{% for i in range(1000) %}{{ messages[0].content }}{% endfor %}', long);
    expect(printing.e.code).toBe('TEMPLATE_LIMIT');
    expect(printing.e.message).toMatch(/characters of output/);
  });

  it('bounds recursion depth', async () => {
    const { e } = await runaway('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}');
    expect(e.code).toBe('TEMPLATE_LIMIT');
    expect(e.message).toMatch(/500 nested evaluations/);
  });

  it('bounds wall-clock time', async () => {
    const slow = new ChatTemplate(
      '{% for a in range(1000) %}{% for b in range(1000) %}{{ a * b }}{% endfor %}{% endfor %}',
    );
    const limits = { ...RENDER_LIMITS, steps: Number.POSITIVE_INFINITY, ms: 50 };
    const t0 = performance.now();
    const e = await typedError(() => slow.render({}, limits));
    expect(e.code).toBe('TEMPLATE_LIMIT');
    expect(e.message).toMatch(/50 ms/);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('keeps the globals templates use: range, namespace, raise_exception, strftime_now, none', () => {
    const t = new ChatTemplate(
      '{{ range(3)|join(",") }} {{ range(1, 7, 2)|join(",") }} {{ range(3, 0, -1)|join(",") }}|' +
        '{{ strftime_now("%Y-%m-%d %%") }}|{{ none is none }} {{ True }}',
    );
    const d = new Date();
    const today = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
    expect(t.render({})).toBe(`0,1,2 1,3,5 3,2,1|${today} %|true true`);
    expect(() => new ChatTemplate('{{ raise_exception("no") }}').render({})).toThrow('no');
  });
});

// Templates in the style of the published ones (tool branches left out), over a 2,000-message chat.
const LLAMA3 = `{{- bos_token }}
{%- if not date_string is defined %}{%- set date_string = strftime_now("%d %b %Y") %}{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}`;

const QWEN = `{%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
{%- else %}
    {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant") %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}`;

// SmolLM2-135M-Instruct's ChatML template, as published in its tokenizer_config.json
const SMOLLM2 =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

describe('real-style templates render long conversations within the bounds', () => {
  const chat: ChatMessage[] = [
    { role: 'system', content: 'Be brief.' },
    ...Array.from(
      { length: 2000 },
      (_, i): ChatMessage => ({
        role: i % 2 ? 'assistant' : 'user',
        content: `message ${i}: ${'words and more words '.repeat(5)}`,
      }),
    ),
  ];
  const body = chat.slice(1);
  const chatml = (m: ChatMessage) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`;

  it('SmolLM2 (ChatML)', () => {
    const out = withTemplate(SMOLLM2).applyChatTemplate(chat, { addGenerationPrompt: true });
    expect(out).toBe(`${chat.map(chatml).join('')}<|im_start|>assistant\n`);
  });

  it('Llama 3 (date from strftime_now, trim filter, system message sliced off)', () => {
    const tok = TextTokenizer.create(smolJson, { chat_template: LLAMA3, bos_token: '<|begin_of_text|>' });
    const out = tok.applyChatTemplate(chat, { addGenerationPrompt: true });
    const turns = body.map((m) => `<|start_header_id|>${m.role}<|end_header_id|>\n\n${m.content.trim()}<|eot_id|>`);
    expect(out).toMatch(/^<\|begin_of_text\|><\|start_header_id\|>system<\|end_header_id\|>\n\n/);
    expect(out).toMatch(/Today Date: \d\d \S+ \d{4}\n\nBe brief\.<\|eot_id\|>/);
    expect(out.endsWith(`${turns.join('')}<|start_header_id|>assistant<|end_header_id|>\n\n`)).toBe(true);
  });

  it('Qwen (namespace, reversed slice, loop.index0)', () => {
    const out = withTemplate(QWEN).applyChatTemplate(chat, { addGenerationPrompt: true });
    expect(out).toBe(`<|im_start|>system\nBe brief.<|im_end|>\n${body.map(chatml).join('')}<|im_start|>assistant\n`);
  });
});
