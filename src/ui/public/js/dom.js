// Elements built from data, never from HTML strings: file names and messages are text.

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string>} [attrs] attributes; `class` and `data-*` included
 * @param {Array<Node | string>} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v)
  node.append(...children)
  return node
}

/**
 * A definition list from [term, value] pairs.
 * @param {string} cls
 * @param {Array<[string, string | Node]>} rows
 */
export function dl (cls, rows) {
  return el('dl', { class: cls }, ...rows.flatMap(([term, value]) => [el('dt', {}, term), el('dd', {}, value)]))
}
