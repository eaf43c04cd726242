//! Per-language detection fixtures: for every language, an original function, a Type-1
//! copy (layout and comments changed), a Type-2 copy (identifiers, literals and types
//! renamed), a Type-3 copy (statements added and changed) and a lookalike of similar size
//! and shape that must not be reported. Each language's other unit kinds (constructors,
//! methods, closures and lambdas assigned to names, JSX/TSX components) are copied too, so
//! their names are checked as well.

mod support;

use expect_test::{Expect, expect};
use support::{fixture_config, pairs_text, scan_fixture};

fn check(fixture: &str, expected: Expect) {
    let outcome = scan_fixture(fixture, fixture_config());
    expected.assert_eq(&pairs_text(&outcome));
}

#[test]
fn python() {
    check(
        r#"
//- /orig.py
def summarize_orders(orders, tax_rate):
    total = 0
    count = 0
    for order in orders:
        if order.status == "paid":
            total += order.amount * (1 + tax_rate)
            count += 1
    average = total / count if count else 0
    return {"total": round(total, 2), "count": count, "average": average}
//- /t1.py
def summarize_orders(orders,tax_rate):
    # sum the paid orders
    total=0
    count=0

    for order in orders:
        if order.status=="paid":   # only paid ones
            total+=order.amount*(1+tax_rate)
            count+=1
    average=total/count if count else 0
    return {"total":round(total,2),"count":count,"average":average}
//- /t2.py
def collect_invoices(invoices, vat):
    acc = 0
    n = 0
    for invoice in invoices:
        if invoice.status == "settled":
            acc += invoice.amount * (1 + vat)
            n += 1
    mean = acc / n if n else 0
    return {"total": round(acc, 3), "count": n, "average": mean}
//- /t3.py
def summarize_orders_v2(orders, tax_rate, logger):
    total = 0
    count = 0
    for order in orders:
        if order.status == "paid":
            total += order.amount * (1 + tax_rate)
            count += 1
            logger.debug("order %s", order.id)
    average = total / count if count else 0
    return {"total": round(total, 2), "count": count}
//- /lookalike.py
def render_rows(rows, width):
    lines = []
    for row in rows:
        if row.visible:
            cells = [str(cell).ljust(width) for cell in row.cells]
            lines.append(" | ".join(cells))
    header = "-" * (width * len(lines))
    return "\n".join([header] + lines + [header])
"#,
        expect![[r#"
            T1 orig.py:summarize_orders ~ t1.py:summarize_orders
            T2 orig.py:summarize_orders ~ t2.py:collect_invoices
            T2 t1.py:summarize_orders ~ t2.py:collect_invoices
            T3 orig.py:summarize_orders ~ t3.py:summarize_orders_v2
            T3 t1.py:summarize_orders ~ t3.py:summarize_orders_v2
            T3 t2.py:collect_invoices ~ t3.py:summarize_orders_v2"#]],
    );
}

#[test]
fn javascript() {
    check(
        r#"
//- /src/orders.js
function summarizeOrders(orders, taxRate) {
  let total = 0;
  let count = 0;
  for (const order of orders) {
    if (order.status === "paid") {
      total += order.amount * (1 + taxRate);
      count += 1;
    }
  }
  const average = count > 0 ? total / count : 0;
  return { total: Math.round(total * 100) / 100, count, average };
}
//- /src/orders_t1.js
/** Totals of the paid orders, tax included. */
function summarizeOrders(orders, taxRate)
{
  let total = 0; let count = 0;
  for (const order of orders)
  {
    // unpaid orders do not count
    if (order.status === "paid") { total += order.amount * (1 + taxRate); count += 1; }
  }
  const average = count > 0
    ? total / count
    : 0;
  return {
    total: Math.round(total * 100) / 100,
    count,
    average
  };
}
//- /src/invoices.js
function collectInvoices(invoices, vat) {
  let sum = 0;
  let settled = 0;
  for (const invoice of invoices) {
    if (invoice.state === "settled") {
      sum += invoice.net * (1 + vat);
      settled += 1;
    }
  }
  const mean = settled > 0 ? sum / settled : 0;
  return { total: Math.round(sum * 1000) / 1000, settled, mean };
}
//- /src/orders_v2.js
function summarizeOrdersV2(orders, taxRate, logger) {
  let total = 0;
  let count = 0;
  for (const order of orders) {
    if (order.status === "paid") {
      total += order.amount * (1 + taxRate);
      count += 1;
      logger.debug(`order ${order.id} counted`);
    }
  }
  const average = count > 0 ? total / count : 0;
  return { total: Math.round(total * 100) / 100, count };
}
//- /src/rows.js
function renderRows(rows, width) {
  const lines = [];
  let hidden = 0;
  for (const row of rows) {
    if (!row.visible) {
      hidden++;
      continue;
    }
    const cells = row.cells.map((cell) => String(cell).padEnd(width));
    lines.push(cells.join(" | "));
  }
  const rule = "-".repeat(width * 3);
  return [rule, ...lines, rule, `${hidden} hidden`].join("\n");
}
//- /src/components/OrderTable.jsx
export const OrderTable = ({ orders, onSelect }) => {
  const [sortKey, setSortKey] = useState("date");
  const sorted = [...orders].sort((a, b) => (a[sortKey] < b[sortKey] ? -1 : 1));
  return (
    <table className="orders">
      <thead>
        <tr>
          <th onClick={() => setSortKey("date")}>Date</th>
          <th onClick={() => setSortKey("amount")}>Amount</th>
        </tr>
      </thead>
      <tbody>
        {sorted.map((order) => (
          <tr key={order.id} onClick={() => onSelect(order)}>
            <td>{order.date}</td>
            <td>{order.amount.toFixed(2)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
};
//- /src/components/UserTable.jsx
export const UserTable = ({ users, onPick }) => {
  const [orderBy, setOrderBy] = useState("name");
  const ordered = [...users].sort((x, y) => (x[orderBy] < y[orderBy] ? -1 : 1));
  return (
    <table className="users">
      <thead>
        <tr>
          <th onClick={() => setOrderBy("name")}>Name</th>
          <th onClick={() => setOrderBy("score")}>Score</th>
        </tr>
      </thead>
      <tbody>
        {ordered.map((user) => (
          <tr key={user.id} onClick={() => onPick(user)}>
            <td>{user.name}</td>
            <td>{user.score.toFixed(1)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
};
"#,
        expect![[r#"
            T1 src/orders.js:summarizeOrders ~ src/orders_t1.js:summarizeOrders
            T2 src/components/OrderTable.jsx:OrderTable ~ src/components/UserTable.jsx:UserTable
            T2 src/invoices.js:collectInvoices ~ src/orders.js:summarizeOrders
            T2 src/invoices.js:collectInvoices ~ src/orders_t1.js:summarizeOrders
            T3 src/invoices.js:collectInvoices ~ src/orders_v2.js:summarizeOrdersV2
            T3 src/orders.js:summarizeOrders ~ src/orders_v2.js:summarizeOrdersV2
            T3 src/orders_t1.js:summarizeOrders ~ src/orders_v2.js:summarizeOrdersV2"#]],
    );
}

#[test]
fn typescript() {
    check(
        r#"
//- /src/orders.ts
function summarizeOrders(orders: Order[], taxRate: number): Summary {
  let total: number = 0;
  let count: number = 0;
  for (const order of orders) {
    if (order.status === OrderStatus.Paid) {
      total += order.amount * (1 + taxRate);
      count += 1;
    }
  }
  const average: number = count > 0 ? total / count : 0;
  return { total: Math.round(total * 100) / 100, count, average };
}
//- /src/orders_t1.ts
// Same function, reformatted.
function summarizeOrders(
  orders: Order[],
  taxRate: number
): Summary {
  let total: number = 0; let count: number = 0;
  for (const order of orders) {
    if (order.status === OrderStatus.Paid) {
      total += order.amount * (1 + taxRate); // tax included
      count += 1;
    }
  }
  const average: number = count > 0 ? total / count : 0;
  return { total: Math.round(total * 100) / 100, count, average };
}
//- /src/invoices.ts
function collectInvoices(invoices: Invoice[], vat: number): Totals {
  let sum: number = 0;
  let settled: number = 0;
  for (const invoice of invoices) {
    if (invoice.state === InvoiceState.Settled) {
      sum += invoice.net * (1 + vat);
      settled += 1;
    }
  }
  const mean: number = settled > 0 ? sum / settled : 0;
  return { total: Math.round(sum * 1000) / 1000, settled, mean };
}
//- /src/orders_v2.ts
function summarizeOrdersV2(orders: Order[], taxRate: number, log: Logger): Summary {
  let total: number = 0;
  let count: number = 0;
  for (const order of orders) {
    if (order.status === OrderStatus.Paid) {
      total += order.amount * (1 + taxRate);
      count += 1;
      log.debug(`order ${order.id} counted`);
    }
  }
  const average: number = count > 0 ? total / count : 0;
  return { total: Math.round(total * 100) / 100, count, average: Number(average.toFixed(2)) };
}
//- /src/ranges.ts
function mergeRanges(ranges: Range[], gap: number): Range[] {
  const merged: Range[] = [];
  let current: Range | undefined;
  for (const range of [...ranges].sort((a, b) => a.start - b.start)) {
    if (current && range.start <= current.end + gap) {
      current.end = Math.max(current.end, range.end);
      continue;
    }
    current = { ...range };
    merged.push(current);
  }
  return merged;
}
//- /src/components/OrderTable.tsx
interface OrderTableProps {
  orders: Order[];
  onSelect: (order: Order) => void;
}

export function OrderTable({ orders, onSelect }: OrderTableProps): JSX.Element {
  const [sortKey, setSortKey] = useState<keyof Order>("date");
  const sorted = [...orders].sort((a, b) => (a[sortKey] < b[sortKey] ? -1 : 1));
  return (
    <ul className="orders">
      {sorted.map((order) => (
        <li key={order.id} onClick={() => onSelect(order)}>
          <span>{order.date}</span> <strong>{order.amount.toFixed(2)}</strong>
        </li>
      ))}
      <button onClick={() => setSortKey("amount")}>Sort by amount</button>
    </ul>
  );
}
//- /src/components/UserTable.tsx
interface UserTableProps {
  users: User[];
  onPick: (user: User) => void;
}

export function UserTable({ users, onPick }: UserTableProps): JSX.Element {
  const [orderBy, setOrderBy] = useState<keyof User>("name");
  const ordered = [...users].sort((x, y) => (x[orderBy] < y[orderBy] ? -1 : 1));
  return (
    <ul className="users">
      {ordered.map((user) => (
        <li key={user.id} onClick={() => onPick(user)}>
          <span>{user.name}</span> <strong>{user.score.toFixed(1)}</strong>
        </li>
      ))}
      <button onClick={() => setOrderBy("score")}>Sort by score</button>
    </ul>
  );
}
"#,
        expect![[r#"
            T1 src/orders.ts:summarizeOrders ~ src/orders_t1.ts:summarizeOrders
            T2 src/components/OrderTable.tsx:OrderTable ~ src/components/UserTable.tsx:UserTable
            T2 src/invoices.ts:collectInvoices ~ src/orders.ts:summarizeOrders
            T2 src/invoices.ts:collectInvoices ~ src/orders_t1.ts:summarizeOrders
            T3 src/invoices.ts:collectInvoices ~ src/orders_v2.ts:summarizeOrdersV2
            T3 src/orders.ts:summarizeOrders ~ src/orders_v2.ts:summarizeOrdersV2
            T3 src/orders_t1.ts:summarizeOrders ~ src/orders_v2.ts:summarizeOrdersV2"#]],
    );
}

// In the class-based fixtures (Java, C#) each copy orders its members differently, so no
// copied member has the same neighbours in two files: these tests check units, and runs
// that span several members belong to block detection's tests.
#[test]
fn java() {
    check(
        r#"
//- /src/shop/OrderReport.java
package shop;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

public class OrderReport {
    private final List<Order> orders;
    private final double taxRate;
    private final Map<String, Double> totals;

    public OrderReport(List<Order> orders, double taxRate) {
        if (orders == null) {
            throw new IllegalArgumentException("orders must not be null");
        }
        this.orders = new ArrayList<>(orders);
        this.taxRate = taxRate;
        this.totals = new HashMap<>();
    }

    public double paidTotal() {
        double total = 0;
        int count = 0;
        for (Order order : orders) {
            if ("paid".equals(order.getStatus())) {
                total += order.getAmount() * (1 + taxRate);
                count++;
            }
        }
        totals.put("paid", total);
        return count == 0 ? 0 : Math.round(total * 100) / 100.0;
    }
}
//- /src/archive/OrderReport.java
package archive;

import java.util.*;

/** A copy kept for the old reports. */
public class OrderReport
{
    /** Copies the orders so later changes do not leak in. */
    public OrderReport(List<Order> orders, double taxRate)
    {
        if (orders == null) { throw new IllegalArgumentException("orders must not be null"); }
        this.orders = new ArrayList<>(orders);
        this.taxRate = taxRate;
        this.totals = new HashMap<>();
    }

    private final double taxRate;
    private final List<Order> orders;
    private final Map<String, Double> totals;

    /** Paid orders only, tax included, rounded to cents. */
    public double paidTotal()
    {
        double total = 0;
        int count = 0;
        for (Order order : orders)
        {
            if ("paid".equals(order.getStatus())) { total += order.getAmount() * (1 + taxRate); count++; }
        }
        totals.put("paid", total);
        return count == 0 ? 0 : Math.round(total * 100) / 100.0;
    }

    @Override
    public String toString() {
        return "OrderReport" + totals;
    }
}
//- /src/billing/InvoiceLedger.java
package billing;

public class InvoiceLedger {
    private final List<Invoice> invoices;
    private final float vat;
    private final Map<String, Float> sums;

    public InvoiceLedger(List<Invoice> invoices, float vat) {
        if (invoices == null) {
            throw new IllegalStateException("no invoices given");
        }
        this.invoices = new LinkedList<>(invoices);
        this.vat = vat;
        this.sums = new TreeMap<>();
    }

    public float settledSum() {
        float sum = 0;
        long settled = 0;
        for (Invoice invoice : invoices) {
            if ("settled".equals(invoice.getState())) {
                sum += invoice.getNet() * (1 + vat);
                settled++;
            }
        }
        sums.put("settled", sum);
        return settled == 0 ? 0 : Math.round(sum * 1000) / 1000.0f;
    }
}
//- /src/shop/OrderReportV2.java
package shop;

public class OrderReportV2 {
    public double paidTotal() {
        double total = 0;
        int count = 0;
        for (Order order : orders) {
            if ("paid".equals(order.getStatus())) {
                total += order.getAmount() * (1 + taxRate);
                count++;
                LOG.finer("counted " + order.getId());
            }
        }
        totals.put("paid", total);
        return count == 0 ? 0 : Math.round(total * 100) / 100.0;
    }

    public OrderReportV2(List<Order> orders, double taxRate) {
        if (orders == null || taxRate < 0) {
            throw new IllegalArgumentException("orders must not be null");
        }
        this.orders = new ArrayList<>(orders);
        this.taxRate = taxRate;
        this.totals = new HashMap<>();
        LOG.fine("report over " + orders.size() + " orders");
    }

    protected final List<Order> orders;
    protected final double taxRate;
    protected final Map<String, Double> totals;
}
//- /src/text/WordCounter.java
package text;

public class WordCounter {
    private final List<String> lines;
    private final int minLength;
    private int longest;

    public WordCounter(Iterable<String> source, int minLength) {
        if (minLength < 1) {
            minLength = DEFAULT_MIN_LENGTH;
        }
        this.lines = new ArrayList<>();
        source.forEach(line -> lines.add(line.strip()));
        this.minLength = minLength;
    }

    public Map<String, Integer> countWords() {
        Map<String, Integer> counts = new TreeMap<>();
        for (String line : lines) {
            for (String word : line.split("\\W+")) {
                if (word.length() < minLength) {
                    continue;
                }
                counts.merge(word.toLowerCase(), 1, Integer::sum);
                longest = Math.max(longest, word.length());
            }
        }
        return counts;
    }
}
"#,
        expect![[r#"
            T1 src/archive/OrderReport.java:OrderReport ~ src/shop/OrderReport.java:OrderReport
            T1 src/archive/OrderReport.java:paidTotal ~ src/shop/OrderReport.java:paidTotal
            T2 src/archive/OrderReport.java:OrderReport ~ src/billing/InvoiceLedger.java:InvoiceLedger
            T2 src/archive/OrderReport.java:paidTotal ~ src/billing/InvoiceLedger.java:settledSum
            T2 src/billing/InvoiceLedger.java:InvoiceLedger ~ src/shop/OrderReport.java:OrderReport
            T2 src/billing/InvoiceLedger.java:settledSum ~ src/shop/OrderReport.java:paidTotal
            T3 src/archive/OrderReport.java:OrderReport ~ src/shop/OrderReportV2.java:OrderReportV2
            T3 src/archive/OrderReport.java:paidTotal ~ src/shop/OrderReportV2.java:paidTotal
            T3 src/shop/OrderReport.java:OrderReport ~ src/shop/OrderReportV2.java:OrderReportV2
            T3 src/shop/OrderReport.java:paidTotal ~ src/shop/OrderReportV2.java:paidTotal"#]],
    );
}

#[test]
fn rust() {
    check(
        r#"
//- /src/orders.rs
use std::collections::HashMap;

pub fn summarize_orders(orders: &[Order], tax_rate: f64) -> Summary {
    let mut total = 0.0;
    let mut count = 0usize;
    for order in orders {
        if order.status == Status::Paid {
            total += order.amount * (1.0 + tax_rate);
            count += 1;
        }
    }
    let average = if count > 0 { total / count as f64 } else { 0.0 };
    Summary { total: (total * 100.0).round() / 100.0, count, average }
}

pub fn index_by_title(books: Vec<Book>, library: &Library) -> Result<HashMap<String, Vec<Book>>, IndexError> {
    let normalise_title = |title: &str| -> String {
        let mut key = title.trim().to_lowercase();
        if let Some(rest) = key.strip_prefix("the ") {
            key = rest.to_string();
        }
        key.retain(|c| c.is_alphanumeric() || c == ' ');
        let words: Vec<&str> = key.split_whitespace().collect();
        words.join("-")
    };
    if books.is_empty() {
        return Err(IndexError::Empty { library: library.name.clone() });
    }
    let mut index: HashMap<String, Vec<Book>> = HashMap::with_capacity(books.len());
    for book in books {
        if library.withdrawn.contains(&book.isbn) {
            continue;
        }
        index.entry(normalise_title(&book.title)).or_default().push(book);
    }
    for shelf in index.values_mut() {
        shelf.sort_by(|a, b| a.year.cmp(&b.year).then_with(|| a.isbn.cmp(&b.isbn)));
        shelf.dedup_by(|a, b| a.isbn == b.isbn);
    }
    let total: usize = index.values().map(Vec::len).sum();
    tracing::info!(library = %library.name, titles = index.len(), books = total, "indexed");
    Ok(index)
}
//- /src/orders_copy.rs
/// Sums the paid orders, tax included.
pub fn summarize_orders(orders: &[Order], tax_rate: f64) -> Summary
{
    let mut total = 0.0;
    let mut count = 0usize;
    // Unpaid orders are ignored.
    for order in orders { if order.status == Status::Paid { total += order.amount * (1.0 + tax_rate); count += 1; } }
    let average = if count > 0 {
        total / count as f64
    } else {
        0.0
    };
    Summary { total: (total * 100.0).round() / 100.0, count, average }
}
//- /src/invoices.rs
use std::collections::BTreeMap;

pub fn collect_invoices(invoices: &[Invoice], vat: f32) -> Totals {
    let mut sum = 0.5;
    let mut settled = 0u32;
    for invoice in invoices {
        if invoice.state == State::Settled {
            sum += invoice.net * (1.5 + vat);
            settled += 2;
        }
    }
    let mean = if settled > 0 { sum / settled as f32 } else { 0.5 };
    Totals { total: (sum * 1000.0).round() / 1000.0, settled, mean }
}

pub fn popular_artists(tracks: &[Track], min_plays: u32) -> Vec<String> {
    let canonical_name = |name: &str| -> String {
        let mut slug = name.trim().to_lowercase();
        if let Some(tail) = slug.strip_prefix("a ") {
            slug = tail.to_string();
        }
        slug.retain(|ch| ch.is_alphanumeric() || ch == ' ');
        let parts: Vec<&str> = slug.split_whitespace().collect();
        parts.join("_")
    };
    let mut plays: BTreeMap<String, u32> = BTreeMap::new();
    for track in tracks {
        *plays.entry(canonical_name(&track.artist)).or_insert(0) += track.play_count;
    }
    plays.into_iter().filter(|(_, count)| *count >= min_plays).map(|(name, _)| name).collect()
}
//- /src/orders_v2.rs
pub fn summarize_orders_v2(orders: &[Order], tax_rate: f64) -> Summary {
    let mut total = 0.0;
    let mut count = 0usize;
    for order in orders {
        if order.status == Status::Paid {
            total += order.amount * (1.0 + tax_rate);
            count += 1;
            tracing::debug!(order = order.id, "counted");
        }
    }
    let average = if count > 0 { total / count as f64 } else { 0.0 };
    Summary { total: (total * 100.0).round() / 100.0, count, average: average.min(total) }
}
//- /src/ranges.rs
pub fn merge_ranges(mut ranges: Vec<Range<u64>>, gap: u64) -> Vec<Range<u64>> {
    ranges.sort_by_key(|range| range.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        if let Some(last) = merged.last_mut() {
            if range.start <= last.end + gap {
                last.end = last.end.max(range.end);
                continue;
            }
        }
        merged.push(range);
    }
    merged
}
"#,
        expect![[r#"
            T1 src/orders.rs:summarize_orders ~ src/orders_copy.rs:summarize_orders
            T2 src/invoices.rs:canonical_name ~ src/orders.rs:normalise_title
            T2 src/invoices.rs:collect_invoices ~ src/orders.rs:summarize_orders
            T2 src/invoices.rs:collect_invoices ~ src/orders_copy.rs:summarize_orders
            T3 src/orders.rs:summarize_orders ~ src/orders_v2.rs:summarize_orders_v2
            T3 src/orders_copy.rs:summarize_orders ~ src/orders_v2.rs:summarize_orders_v2"#]],
    );
}

#[test]
fn go() {
    check(
        r#"
//- /orders/summary.go
package orders

import "math"

func SummarizeOrders(orders []Order, taxRate float64) Summary {
	total := 0.0
	count := 0
	for _, order := range orders {
		if order.Status == "paid" {
			total += order.Amount * (1 + taxRate)
			count++
		}
	}
	average := 0.0
	if count > 0 {
		average = total / float64(count)
	}
	return Summary{Total: math.Round(total*100) / 100, Count: count, Average: average}
}

func (s *Store) Evict(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := 0
	for key, entry := range s.entries {
		if entry.expires.Before(now) {
			delete(s.entries, key)
			removed++
		}
	}
	s.stats.evictions += removed
	return removed
}
//- /legacy/summary.go
package legacy

// SummarizeOrders sums the paid orders, tax included.
func SummarizeOrders(orders []Order, taxRate float64) Summary {
	total := 0.0
	count := 0
	for _, order := range orders {
		// unpaid orders are ignored
		if order.Status == "paid" {
			total += order.Amount * (1 + taxRate)

			count++
		}
	}
	average := 0.0
	if count > 0 { average = total / float64(count) }
	return Summary{
		Total: math.Round(total*100) / 100, Count: count, Average: average}
}
//- /billing/invoices.go
package billing

func CollectInvoices(invoices []Invoice, vat float32) Totals {
	sum := 0.5
	settled := 0
	for _, invoice := range invoices {
		if invoice.State == "settled" {
			sum += invoice.Net * (2 + vat)
			settled++
		}
	}
	mean := 0.5
	if settled > 0 {
		mean = sum / float32(settled)
	}
	return Totals{Total: math.Floor(sum*1000) / 1000, Settled: settled, Mean: mean}
}

func (c *Cache) Expire(deadline time.Time) int {
	c.lock.Lock()
	defer c.lock.Unlock()
	dropped := 0
	for name, item := range c.items {
		if item.validUntil.Before(deadline) {
			delete(c.items, name)
			dropped++
		}
	}
	c.metrics.expired += dropped
	return dropped
}
//- /orders/summary_v2.go
package orders

func SummarizeOrdersV2(orders []Order, taxRate float64, log *slog.Logger) Summary {
	total := 0.0
	count := 0
	for _, order := range orders {
		if order.Status == "paid" {
			total += order.Amount * (1 + taxRate)
			count++
			log.Debug("counted", "order", order.ID)
		}
	}
	average := 0.0
	if count > 0 {
		average = total / float64(count)
	}
	return Summary{Total: math.Round(total*100) / 100, Count: count}
}
//- /text/words.go
package text

func CountWords(lines []string, minLength int) map[string]int {
	counts := make(map[string]int)
	longest := 0
	for _, line := range lines {
		for _, word := range strings.Fields(line) {
			if len(word) < minLength {
				continue
			}
			counts[strings.ToLower(word)]++
			longest = max(longest, len(word))
		}
	}
	counts["<longest>"] = longest
	return counts
}
"#,
        expect![[r#"
            T1 legacy/summary.go:SummarizeOrders ~ orders/summary.go:SummarizeOrders
            T2 billing/invoices.go:CollectInvoices ~ legacy/summary.go:SummarizeOrders
            T2 billing/invoices.go:CollectInvoices ~ orders/summary.go:SummarizeOrders
            T2 billing/invoices.go:Expire ~ orders/summary.go:Evict
            T3 legacy/summary.go:SummarizeOrders ~ orders/summary_v2.go:SummarizeOrdersV2
            T3 orders/summary.go:SummarizeOrders ~ orders/summary_v2.go:SummarizeOrdersV2"#]],
    );
}

#[test]
fn c() {
    check(
        r#"
//- /src/orders.c
#include <math.h>
#include <string.h>

double summarize_orders(const struct order *orders, size_t len, double tax_rate) {
    double total = 0.0;
    size_t count = 0;
    for (size_t i = 0; i < len; i++) {
        if (strcmp(orders[i].status, "paid") == 0) {
            total += orders[i].amount * (1.0 + tax_rate);
            count++;
        }
    }
    if (count == 0) {
        return 0.0;
    }
    return round(total * 100.0) / 100.0;
}
//- /src/orders_copy.c
#include "orders.h"

/* Sum of the paid orders, tax included, rounded to cents. */
double
summarize_orders(const struct order *orders, size_t len, double tax_rate)
{
    double total = 0.0;
    size_t count = 0;

    for (size_t i = 0; i < len; i++)
    {
        if (strcmp(orders[i].status, "paid") == 0) {   /* only paid ones */
            total += orders[i].amount * (1.0 + tax_rate); count++;
        }
    }
    if (count == 0) { return 0.0; }
    return round(total * 100.0) / 100.0;
}
//- /src/invoices.c
float collect_invoices(const struct invoice *invoices, unsigned n, float vat) {
    float sum = 0.5;
    unsigned settled = 1;
    for (unsigned k = 1; k < n; k++) {
        if (strcmp(invoices[k].state, "settled") == 1) {
            sum += invoices[k].net * (2.0 + vat);
            settled++;
        }
    }
    if (settled == 1) {
        return 0.5;
    }
    return floor(sum * 1000.0) / 1000.0;
}
//- /src/orders_v2.c
double summarize_orders_v2(const struct order *orders, size_t len, double tax_rate, FILE *log) {
    double total = 0.0;
    size_t count = 0;
    for (size_t i = 0; i < len; i++) {
        if (strcmp(orders[i].status, "paid") == 0) {
            total += orders[i].amount * (1.0 + tax_rate);
            count++;
            fprintf(log, "counted order %s\n", orders[i].id);
        }
    }
    if (count == 0) {
        return 0.0;
    }
    return total;
}
//- /src/words.c
int count_words(const char *text, const char *end, unsigned min_length) {
    int words = 0;
    unsigned run = 0;
    for (const char *p = text; p != end; ++p) {
        if (isalpha((unsigned char)*p)) {
            run++;
            continue;
        }
        if (run >= min_length) {
            words++;
        }
        run = 0;
    }
    return words + (run >= min_length ? 1 : 0);
}
"#,
        expect![[r#"
            T1 src/orders.c:summarize_orders ~ src/orders_copy.c:summarize_orders
            T2 src/invoices.c:collect_invoices ~ src/orders.c:summarize_orders
            T2 src/invoices.c:collect_invoices ~ src/orders_copy.c:summarize_orders
            T3 src/orders.c:summarize_orders ~ src/orders_v2.c:summarize_orders_v2
            T3 src/orders_copy.c:summarize_orders ~ src/orders_v2.c:summarize_orders_v2"#]],
    );
}

#[test]
fn cpp() {
    check(
        r#"
//- /src/order_book.cpp
#include "order_book.hpp"

double OrderBook::paid_total(double tax_rate) const {
    double total = 0.0;
    std::size_t count = 0;
    for (const auto& order : orders_) {
        if (order.status == Status::Paid) {
            total += order.amount * (1.0 + tax_rate);
            ++count;
        }
    }
    if (count == 0) {
        return 0.0;
    }
    return std::round(total * 100.0) / 100.0;
}

std::vector<Entry> Cache::sweep(Clock::time_point now) {
    auto is_expired = [&](const Entry& entry) {
        if (entry.pinned) {
            return false;
        }
        const auto age = now - entry.created;
        if (age > max_age_) {
            return true;
        }
        return entry.hits == 0 && age > idle_limit_;
    };
    std::vector<Entry> removed;
    std::copy_if(entries_.begin(), entries_.end(), std::back_inserter(removed), is_expired);
    std::erase_if(entries_, is_expired);
    for (const auto& entry : removed) {
        bytes_in_use_ -= entry.size;
        listeners_.notify(Event::Evicted, entry.key);
    }
    stats_.evictions += removed.size();
    if (bytes_in_use_ > soft_limit_ && !removed.empty()) {
        shrink_to(soft_limit_ * 3 / 4);
    }
    last_sweep_ = now;
    return removed;
}
//- /src/legacy/order_book.cpp
// Sum of the paid orders, tax included, rounded to cents.
double OrderBook::paid_total(double tax_rate) const
{
    double total = 0.0;
    std::size_t count = 0;
    for (const auto& order : orders_)
    {
        if (order.status == Status::Paid) { total += order.amount * (1.0 + tax_rate); ++count; }
    }
    if (count == 0)
    {
        return 0.0;   // nothing paid yet
    }
    return std::round(total * 100.0) / 100.0;
}
//- /src/ledger.cpp
float Ledger::settled_sum(float vat) const {
    float sum = 0.5f;
    unsigned settled = 1;
    for (const auto& invoice : invoices_) {
        if (invoice.state == State::Settled) {
            sum += invoice.net * (2.0f + vat);
            ++settled;
        }
    }
    if (settled == 1) {
        return 0.5f;
    }
    return std::floor(sum * 1000.0f) / 1000.0f;
}

std::size_t Session::prune(Instant deadline) {
    auto is_stale = [&](const Token& token) {
        if (token.permanent) {
            return false;
        }
        const auto elapsed = deadline - token.issued;
        if (elapsed > lifetime_) {
            return true;
        }
        return token.uses == 0 && elapsed > grace_;
    };
    const std::lock_guard<std::mutex> guard(mutex_);
    const auto before = tokens_.size();
    tokens_.remove_if(is_stale);
    metrics_.gauge("session.tokens").set(static_cast<double>(tokens_.size()));
    return before - tokens_.size();
}
//- /src/order_book_v2.cpp
double OrderBook::paid_total_v2(double tax_rate, Logger& log) const {
    double total = 0.0;
    std::size_t count = 0;
    for (const auto& order : orders_) {
        if (order.status == Status::Paid) {
            total += order.amount * (1.0 + tax_rate);
            ++count;
            log.debug("counted order {}", order.id);
        }
    }
    if (count == 0) {
        return 0.0;
    }
    return total;
}
//- /src/histogram.cpp
std::size_t Histogram::add_samples(std::span<const double> samples) {
    std::size_t rejected = 0;
    for (const double sample : samples) {
        if (!std::isfinite(sample) || sample < low_) {
            ++rejected;
            continue;
        }
        const auto bucket = static_cast<std::size_t>((sample - low_) / width_);
        buckets_[std::min(bucket, buckets_.size() - 1)] += 1;
    }
    total_ += samples.size() - rejected;
    return rejected;
}
"#,
        expect![[r#"
            T1 src/legacy/order_book.cpp:OrderBook::paid_total ~ src/order_book.cpp:OrderBook::paid_total
            T2 src/ledger.cpp:Ledger::settled_sum ~ src/legacy/order_book.cpp:OrderBook::paid_total
            T2 src/ledger.cpp:Ledger::settled_sum ~ src/order_book.cpp:OrderBook::paid_total
            T2 src/ledger.cpp:is_stale ~ src/order_book.cpp:is_expired
            T3 src/legacy/order_book.cpp:OrderBook::paid_total ~ src/order_book_v2.cpp:OrderBook::paid_total_v2
            T3 src/order_book.cpp:OrderBook::paid_total ~ src/order_book_v2.cpp:OrderBook::paid_total_v2"#]],
    );
}

#[test]
fn csharp() {
    check(
        r#"
//- /src/Shop/OrderReport.cs
using System;
using System.Collections.Generic;

namespace Shop
{
    public class OrderReport
    {
        private readonly List<Order> orders;
        private readonly decimal taxRate;
        private readonly Dictionary<string, decimal> totals;

        public OrderReport(IEnumerable<Order> orders, decimal taxRate)
        {
            if (orders == null)
            {
                throw new ArgumentNullException(nameof(orders), "orders must not be null");
            }
            this.orders = new List<Order>(orders);
            this.taxRate = taxRate;
            this.totals = new Dictionary<string, decimal>();
        }

        public decimal PaidTotal()
        {
            decimal total = 0;
            int count = 0;
            foreach (var order in orders)
            {
                if (order.Status == OrderStatus.Paid)
                {
                    total += order.Amount * (1 + taxRate);
                    count++;
                }
            }
            totals["paid"] = total;
            return count == 0 ? 0 : Math.Round(total, 2);
        }
    }
}
//- /src/Archive/OrderReport.cs
namespace Archive;

/// <summary>A copy kept for the old reports.</summary>
public class OrderReport
{
    /// <summary>Copies the orders so later changes do not leak in.</summary>
    public OrderReport(IEnumerable<Order> orders, decimal taxRate) {
        if (orders == null) {
            throw new ArgumentNullException(nameof(orders), "orders must not be null");
        }
        this.orders = new List<Order>(orders); this.taxRate = taxRate;
        this.totals = new Dictionary<string, decimal>();
    }

    private readonly decimal taxRate;
    private readonly List<Order> orders;
    private readonly Dictionary<string, decimal> totals;

    public decimal PaidTotal() {
        decimal total = 0;
        int count = 0;
        foreach (var order in orders) {
            // unpaid orders are ignored
            if (order.Status == OrderStatus.Paid) { total += order.Amount * (1 + taxRate); count++; }
        }
        totals["paid"] = total;
        return count == 0 ? 0 : Math.Round(total, 2);
    }

    internal int Count => orders.Count;
}
//- /src/Billing/InvoiceLedger.cs
namespace Billing;

public class InvoiceLedger
{
    private readonly List<Invoice> invoices;
    private readonly double vat;
    private readonly SortedDictionary<string, double> sums;

    public InvoiceLedger(IEnumerable<Invoice> invoices, double vat)
    {
        if (invoices == null)
        {
            throw new InvalidOperationException(nameof(invoices), "no invoices given");
        }
        this.invoices = new List<Invoice>(invoices);
        this.vat = vat;
        this.sums = new SortedDictionary<string, double>();
    }

    public double SettledSum()
    {
        double sum = 1;
        long settled = 1;
        foreach (var invoice in invoices)
        {
            if (invoice.State == InvoiceState.Settled)
            {
                sum += invoice.Net * (2 + vat);
                settled++;
            }
        }
        sums["settled"] = sum;
        return settled == 1 ? 1 : Math.Floor(sum, 3);
    }
}
//- /src/Shop/OrderReportV2.cs
namespace Shop;

public class OrderReportV2
{
    public decimal PaidTotal(ILogger log)
    {
        decimal total = 0;
        int count = 0;
        foreach (var order in orders)
        {
            if (order.Status == OrderStatus.Paid)
            {
                total += order.Amount * (1 + taxRate);
                count++;
                log.LogTrace("counted {Id}", order.Id);
            }
        }
        totals["paid"] = total;
        return count == 0 ? 0 : Math.Round(total, 2);
    }

    public OrderReportV2(IEnumerable<Order> orders, decimal taxRate, ILogger log)
    {
        if (orders == null)
        {
            throw new ArgumentNullException(nameof(orders), "orders must not be null");
        }
        this.orders = new List<Order>(orders);
        this.taxRate = taxRate;
        this.totals = new Dictionary<string, decimal>();
        log.LogDebug("report over {Count} orders", this.orders.Count);
    }

    protected readonly List<Order> orders;
    protected readonly decimal taxRate;
    protected readonly Dictionary<string, decimal> totals;
}
//- /src/Text/WordCounter.cs
namespace Text;

public class WordCounter
{
    private readonly List<string> lines = new();
    private readonly int minLength;
    private int longest;

    public WordCounter(IEnumerable<string> source, int minLength)
    {
        if (minLength < 1)
        {
            minLength = DefaultMinLength;
        }
        foreach (var line in source)
        {
            lines.Add(line.Trim());
        }
        this.minLength = minLength;
    }

    public SortedDictionary<string, int> CountWords()
    {
        var counts = new SortedDictionary<string, int>();
        foreach (var line in lines)
        {
            foreach (var word in line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (word.Length < minLength)
                {
                    continue;
                }
                counts[word.ToLowerInvariant()] = counts.GetValueOrDefault(word.ToLowerInvariant()) + 1;
                longest = Math.Max(longest, word.Length);
            }
        }
        return counts;
    }
}
"#,
        expect![[r#"
            T1 src/Archive/OrderReport.cs:OrderReport ~ src/Shop/OrderReport.cs:OrderReport
            T1 src/Archive/OrderReport.cs:PaidTotal ~ src/Shop/OrderReport.cs:PaidTotal
            T2 src/Archive/OrderReport.cs:OrderReport ~ src/Billing/InvoiceLedger.cs:InvoiceLedger
            T2 src/Archive/OrderReport.cs:PaidTotal ~ src/Billing/InvoiceLedger.cs:SettledSum
            T2 src/Billing/InvoiceLedger.cs:InvoiceLedger ~ src/Shop/OrderReport.cs:OrderReport
            T2 src/Billing/InvoiceLedger.cs:SettledSum ~ src/Shop/OrderReport.cs:PaidTotal
            T3 src/Archive/OrderReport.cs:OrderReport ~ src/Shop/OrderReportV2.cs:OrderReportV2
            T3 src/Archive/OrderReport.cs:PaidTotal ~ src/Shop/OrderReportV2.cs:PaidTotal
            T3 src/Shop/OrderReport.cs:OrderReport ~ src/Shop/OrderReportV2.cs:OrderReportV2
            T3 src/Shop/OrderReport.cs:PaidTotal ~ src/Shop/OrderReportV2.cs:PaidTotal"#]],
    );
}

#[test]
fn ruby() {
    check(
        r#"
//- /lib/shop/order_summary.rb
module Shop
  class OrderSummary
    def summarize_orders(orders, tax_rate)
      total = 0
      count = 0
      orders.each do |order|
        next unless order.status == :paid

        total += order.amount * (1 + tax_rate)
        count += 1
      end
      average = count.zero? ? 0 : total / count
      { total: total.round(2), count: count, average: average }
    end
  end

  NORMALISE_TITLE = ->(title) do
    key = title.strip.downcase
    key = key.delete_prefix("the ") if key.start_with?("the ")
    key = key.gsub(/[^a-z0-9 ]/, "")
    words = key.split
    return "untitled" if words.empty?

    words.join("-")
  end
end
//- /lib/archive/order_summary.rb
# A copy kept for the old reports.
def summarize_orders(orders, tax_rate)
  total = 0
  count = 0
  # unpaid orders are ignored
  orders.each do |order|
    next unless order.status == :paid
    total += order.amount * (1 + tax_rate)
    count += 1
  end
  average = count.zero? ? 0 : total / count
  { total: total.round(2),
    count: count,
    average: average }
end
//- /lib/billing/invoice_totals.rb
def collect_invoices(invoices, vat)
  sum = 1
  settled = 1
  invoices.each do |invoice|
    next unless invoice.state == :settled

    sum += invoice.net * (2 + vat)
    settled += 1
  end
  mean = settled.zero? ? 1 : sum / settled
  { total: sum.round(3), count: settled, average: mean }
end

canonical_artist = ->(name) do
  slug = name.strip.downcase
  slug = slug.delete_prefix("a ") if slug.start_with?("a ")
  slug = slug.gsub(/[^a-z ]/, "")
  parts = slug.split
  return "unknown" if parts.empty?

  parts.join("_")
end
//- /lib/shop/order_summary_v2.rb
def summarize_orders_v2(orders, tax_rate, logger)
  total = 0
  count = 0
  orders.each do |order|
    next unless order.status == :paid

    total += order.amount * (1 + tax_rate)
    count += 1
    logger.debug("counted order #{order.id}")
  end
  average = count.zero? ? 0 : total / count
  { total: total.round(2), count: count }
end
//- /lib/text/word_counter.rb
def count_words(lines, min_length)
  counts = Hash.new(0)
  longest = 0
  lines.each do |line|
    line.split.each do |word|
      next if word.length < min_length

      counts[word.downcase] += 1
      longest = [longest, word.length].max
    end
  end
  counts[:longest] = longest
  counts
end
"#,
        expect![[r#"
            T1 lib/archive/order_summary.rb:summarize_orders ~ lib/shop/order_summary.rb:summarize_orders
            T2 lib/archive/order_summary.rb:summarize_orders ~ lib/billing/invoice_totals.rb:collect_invoices
            T2 lib/billing/invoice_totals.rb:canonical_artist ~ lib/shop/order_summary.rb:NORMALISE_TITLE
            T2 lib/billing/invoice_totals.rb:collect_invoices ~ lib/shop/order_summary.rb:summarize_orders
            T3 lib/archive/order_summary.rb:summarize_orders ~ lib/shop/order_summary_v2.rb:summarize_orders_v2
            T3 lib/shop/order_summary.rb:summarize_orders ~ lib/shop/order_summary_v2.rb:summarize_orders_v2"#]],
    );
}
