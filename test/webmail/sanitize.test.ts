// The HTML sanitizer of the webmail: what can run or load is removed, the rest of the message is kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEntities, sanitizeHTML, type SanitizeOptions } from '../../src/webmail/sanitize.js';

const local: SanitizeOptions = { remote: false, cid: (id) => (id === 'logo@x' ? 'data:image/png;base64,iVBORw0KGgo=' : undefined) };
const clean = (html: string, o: SanitizeOptions = local) => sanitizeHTML(html, o).html;

/** Nothing in the output can run or load anything from elsewhere. */
function assertInert(out: string): void {
  assert.doesNotMatch(out, /<(script|iframe|object|embed|svg|math|form|input|meta|link|base|frame|template|noscript)\b/i, out);
  assert.doesNotMatch(out, /\son[a-z]+\s*=/i, out);
  assert.doesNotMatch(out, /javascript:|vbscript:|expression\(|@import/i, out);
  assert.doesNotMatch(out, /(src|href|background)="(?!https?:|mailto:|data:image\/|#)/i, out);
  assert.doesNotMatch(out, /url\((?!(?:"|&quot;)?data:)/i, out);
}

test('scripts, event handlers and script URLs are removed', () => {
  const out = clean(
    `<script>alert(1)</script><SCRIPT SRC=//evil.example/x.js></SCRIPT><p onclick="alert(2)" ONMOUSEOVER=alert(3)>text</p>` +
      `<img src=x onerror=alert(4)><body onload=alert(5)><a href="javascript:alert(6)">a</a><a href="jav&#x61;script&colon;alert(7)">b</a>` +
      `<a href=" &#14; javascript:alert(8)">c</a><a href="java\tscript:alert(9)">d</a><a href="vbscript:x">e</a><a href="data:text/html,<script>alert(10)</script>">f</a>`,
  );
  assertInert(out);
  assert.doesNotMatch(out, /alert/);
  assert.match(out, /<p>text<\/p>/);
  assert.match(out, /<a>a<\/a><a>b<\/a><a>c<\/a><a>d<\/a><a>e<\/a><a>f<\/a>/);
});

test('frames, forms, plugins, SVG, MathML, meta refresh and base are removed', () => {
  const out = clean(
    `<iframe src="https://evil.example/"></iframe><frameset><frame src=x></frameset><object data=x></object><embed src=x>` +
      `<form action="https://evil.example/"><input name=q><button>Go</button></form><svg onload=alert(1)><script>alert(2)</script><image href="https://evil.example/i.png"/></svg>` +
      `<math><mtext><style><img src=x onerror=alert(3)></style></mtext></math><meta http-equiv="refresh" content="0;url=https://evil.example/">` +
      `<link rel=stylesheet href="https://evil.example/s.css"><base href="https://evil.example/"><template><img src=x onerror=alert(4)></template><noscript><img src="https://evil.example/n.png"></noscript>`,
  );
  assertInert(out);
  assert.doesNotMatch(out, /evil|alert/);
  // The button's text stays, as text.
  assert.equal(out, 'Go');
});

test('remote images become placeholders unless asked for; inline cid images become data URLs', () => {
  const html = `<p><img src="https://tracker.example/open.gif" width="1" height="1" alt="">` + `<img src="http://tracker.example/b.png"><img src="cid:logo@x" alt="logo"><img src="cid:missing@x"><img src="relative.png"></p>`;
  const blocked = sanitizeHTML(html, local);
  assertInert(blocked.html);
  assert.equal(blocked.remoteBlocked, 2);
  assert.equal((blocked.html.match(/data-blocked/g) ?? []).length, 4);
  assert.match(blocked.html, /<img width="1" height="1" alt="" data-blocked>/);
  assert.match(blocked.html, /<img src="data:image\/png;base64,iVBORw0KGgo=" alt="logo">/);
  const shown = sanitizeHTML(html, { ...local, remote: true });
  assert.equal(shown.remoteBlocked, 0);
  assert.match(shown.html, /src="https:\/\/tracker\.example\/open\.gif"/);
  assert.match(shown.html, /src="http:\/\/tracker\.example\/b\.png"/);
});

test('style sheets and style attributes keep their look but load nothing', () => {
  const out = clean(
    `<style>@import url(https://evil.example/a.css); @import "https://evil.example/b.css"; body { color: #333; background: url(https://evil.example/bg.png) }` +
      `.x { background-image: u\\72l(https://evil.example/esc.png) } .y { background: image-set("https://evil.example/set.png" 1x) }` +
      `@font-face { font-family: f; src: url(https://evil.example/f.woff) } .z { width: expression(alert(1)); behavior: url(x.htc) } .w{background:url(https://evil.example/open.png</style>` +
      `<div style="color: red; background: url('https://evil.example/d.png')">styled</div><p style="background:url(cid:logo@x)">inline</p>`,
  );
  assertInert(out);
  assert.doesNotMatch(out, /evil\.example\/(a|b)\.css/);
  assert.match(out, /body \{ color: #333; background: none \}/);
  assert.match(out, /<div style="color: red; background: none">styled<\/div>/);
  assert.match(out, /background:url\(&quot;data:image\/png;base64,iVBORw0KGgo=&quot;\)/);
  // "</style" cannot be forged from escapes: the sheet cannot end early.
  const forged = clean(`<style>p{content:"\\3c /style\\3e <img src=x onerror=alert(1)>"}</style>`);
  assert.equal((forged.match(/<\/style>/g) ?? []).length, 1);
  assert.doesNotMatch(forged, /<img/);
});

test('mail markup is kept: tables, fonts, links open in a new window without referrer', () => {
  const out = clean(
    `<!DOCTYPE html><html><head><title>Newsletter</title><meta charset="utf-8"></head><body bgcolor="#eeeeee"><table width="600" cellpadding="0" align="center"><tr><td valign="top" style="padding: 8px">` +
      `<font face="Arial" color="#333">Hello &amp; welcome</font><br><a href="https://shop.example/?a=1&amp;b=2">Shop</a> <a href="mailto:info@shop.example">Mail</a> <a href="#top">Top</a></td></tr></table></body></html>`,
  );
  assertInert(out);
  assert.equal(
    out,
    `<div bgcolor="#eeeeee" style="background-color:#eeeeee"><table width="600" cellpadding="0" align="center"><tr><td valign="top" style="padding: 8px"><font face="Arial" color="#333">Hello &amp; welcome</font><br>` +
      `<a href="https://shop.example/?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">Shop</a> <a href="mailto:info@shop.example" target="_blank" rel="noopener noreferrer">Mail</a> <a href="#top">Top</a></td></tr></table></div>`,
  );
});

test('broken markup: unclosed tags are closed, stray "<" is text, comments and bogus comments go', () => {
  assert.equal(clean('<b>bold <i>both</b> a < b <!-- <script>alert(1)</script> --> c <!-->x<? pi ?></p>'), '<b>bold <i>both</i></b> a &lt; b  c x');
  assert.equal(clean('<div><p>open'), '<div><p>open</p></div>');
  // End of input inside a tag drops the tag (as browsers do).
  assert.equal(clean('ok<img src="https://evil.example/x.png'), 'ok');
  assert.equal(clean('<p title="a>b" class=x>t'), '<p title="a&gt;b" class="x">t</p>');
});

test('character references in attributes are decoded before checking and escaped after', () => {
  assert.equal(decodeEntities('&#x6A;&#97;v&#X61;&amp;&lt;&quot;&colon;&unknown;&amp'), 'java&<":&unknown;&');
  assert.equal(decodeEntities('&ampx &copy=1'), '&ampx &copy=1');
  assert.equal(clean('<a href="https://x.example/?q=&quot;&gt;&lt;script&gt;">x</a>'), '<a href="https://x.example/?q=&quot;&gt;&lt;script&gt;" target="_blank" rel="noopener noreferrer">x</a>');
});

test('sanitizing is idempotent and inert on generated tag soup', () => {
  const bits = [
    '<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '<a href="javascript:alert(1)">', '</a>', '<svg><style>', '</svg>', '<style>a{b:url(https://e.example/x)}</style>',
    '<p style="background:url(https://e.example/y)">', '</p>', '<!--', '-->', '<', '>', '"', "'", '<b>', '</b>', '<table><tr><td>', '</td></tr></table>', 'text ', '&lt;', '&#x3c;script&#x3e;',
    '<textarea><img src=x onerror=alert(1)></textarea>', '<title>', '</title>', '<iframe srcdoc="<script>alert(1)</script>">', '</iframe>', '<math><mi href="javascript:alert(1)">', '<img src="https://e.example/z.png">',
  ];
  let seed = 42;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let i = 0; i < 500; i++) {
    let html = '';
    for (let j = 0, n = 1 + rand(12); j < n; j++) html += bits[rand(bits.length)];
    const once = clean(html);
    assertInert(once);
    assert.equal(clean(once), once, `not a fixed point for ${JSON.stringify(html)}`);
  }
});
