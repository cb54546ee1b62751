/**
 * Deterministic generator of realistic benign HTTP requests (browser page loads, HTML forms,
 * JSON APIs, search queries with quotes and apostrophes, file uploads) to measure the CRS
 * engine's false-positive rate. Same seed, same corpus: the corpus is never stored, only this
 * generator.
 *
 * @module
 */
import type { RuleRequest } from "../rule_engine.ts";

/** A seeded PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = [
  "Anna",
  "Liam",
  "Sofía",
  "Noah",
  "Zoë",
  "Mateo",
  "Chloé",
  "Ethan",
  "Amélie",
  "Lucas",
  "Maya",
  "Oliver",
  "Hannah",
  "Jonas",
  "Léa",
  "Aarav",
  "Yuki",
  "Fatima",
  "Mohammed",
  "Siobhan",
  "Seán",
  "Dmitri",
  "Ingrid",
  "Kofi",
  "Priya",
  "Mary-Jane",
  "D'Angelo",
  "Renée",
];
const LAST = [
  "O'Brien",
  "Smith",
  "García",
  "Müller",
  "D'Souza",
  "Nguyen",
  "O'Connor",
  "Van der Berg",
  "Johnson",
  "Kowalski",
  "Rossi",
  "Okafor",
  "Schmidt",
  "Dubois",
  "Fitzgerald",
  "MacDonald",
  "López",
  "Andersson",
  "Tanaka",
  "Silva",
  "De la Cruz",
  "St. James",
];
const CITIES = [
  "New York",
  "Zürich",
  "São Paulo",
  "L'Aquila",
  "Saint-Étienne",
  "Köln",
  "Dublin",
  "Kraków",
  "Montréal",
  "Oslo",
  "Austin",
  "Tōkyō",
  "Cape Town",
];
const STREETS = [
  "Main St.",
  "Baker Street",
  "Rue de l'Église",
  "Hauptstraße",
  "Elm Avenue",
  "King's Road",
  "5th Ave, Apt 12B",
  "Calle Mayor",
  "Via Roma 3/A",
  "Old Mill Lane",
];
const WORDS =
  "the quick brown fox jumps over lazy dog great product fast shipping would buy again love it works fine battery life screen size price value quality support team thanks order delivery box color blue red green small medium large size fits perfectly weekend trip hotel room breakfast included kids friendly recommend"
    .split(" ");
const SEARCH = [
  "don't stop believing",
  '"exact phrase" search',
  "rock & roll",
  "mac 'n' cheese recipe",
  "levi's 501 jeans",
  "children's books age 5-7",
  "how to tie a tie",
  "what's the weather in L'Aquila",
  "usb-c cable 2m",
  "50% off shoes",
  "C# vs. Java",
  "1/2 inch drill bit",
  '"new york" pizza',
  "women's running shoes size 8",
  "best laptop 2024",
  "can't log in",
  "O'Reilly books",
  "price < 100",
  "tom & jerry dvd",
  "iphone 15 pro max case",
  "a+ grade essay tips",
  "where's my order?",
  "select comfort mattress",
  "drop shipping suppliers",
  "union square restaurants",
  "order by phone",
  "sleep apnea treatment",
  "update firmware router",
  "delete my account",
  "1 or 2 bedroom apartment",
  "script writing course",
  "alert bracelet medical",
  "javascript tutorial for beginners",
  "onion rings",
  "on sale now",
  "#1 bestseller",
  "rock'n'roll 50's",
  "Q&A session",
  "it's 5 o'clock somewhere",
];
const UAS = [
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
  "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
];
const PAGES = [
  "/",
  "/products",
  "/products/shoes",
  "/blog/2024/05/spring-sale",
  "/about-us",
  "/contact",
  "/cart",
  "/checkout",
  "/account/orders",
  "/help/faq",
  "/category/home-garden",
  "/static/css/site.min.css",
  "/static/js/app.3f9a1c.js",
  "/images/logo.png",
  "/favicon.ico",
  "/en-us/support/article/12345",
  "/docs/getting-started.html",
  "/api/v1/products/42",
];

const enc = new TextEncoder();

function pick<T>(r: () => number, a: T[]): T {
  return a[Math.floor(r() * a.length)];
}

function formEncode(pairs: [string, string][]): string {
  return pairs
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v).replace(/%20/g, "+")}`)
    .join("&");
}

/** Encodes a Unicode string as UTF-8 and returns it as a byte string (one char per byte). */
function utf8Bytes(s: string): string {
  return String.fromCharCode(...enc.encode(s));
}

function sentence(r: () => number, n: number): string {
  const w: string[] = [];
  for (let i = 0; i < n; i++) w.push(pick(r, WORDS));
  let s = w.join(" ");
  s = s[0].toUpperCase() + s.slice(1);
  const extras = [
    ".",
    "!",
    " :)",
    ". Didn't expect that!",
    " — 5 stars.",
    ", isn't it?",
    " (really).",
  ];
  return s + pick(r, extras);
}

function baseHeaders(
  r: () => number,
  accept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
): [string, string][] {
  const h: [string, string][] = [
    ["Host", "shop.example.com"],
    ["User-Agent", pick(r, UAS)],
    ["Accept", accept],
    [
      "Accept-Language",
      pick(r, ["en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "fr-FR,fr;q=0.9", "en-GB,en;q=0.7"]),
    ],
    ["Accept-Encoding", "gzip, deflate, br"],
  ];
  if (r() < 0.7) {
    h.push([
      "Cookie",
      `session=${Math.floor(r() * 1e16).toString(36)}${
        Math.floor(r() * 1e16).toString(36)
      }; _ga=GA1.2.${Math.floor(r() * 1e9)}.${1700000000 + Math.floor(r() * 1e7)}; theme=${
        pick(r, ["dark", "light"])
      }; consent=${pick(r, ["true", "analytics%2Cads", "essential"])}`,
    ]);
  }
  if (r() < 0.6) h.push(["Referer", `https://shop.example.com${pick(r, PAGES)}`]);
  return h;
}

/**
 * Generates `count` benign requests, deterministically from `seed`.
 *
 * @param count Number of requests.
 * @param seed PRNG seed.
 * @returns The requests, with a `kind` label each.
 */
export function generateBenignCorpus(
  count: number,
  seed = 1,
): { kind: string; request: RuleRequest }[] {
  const r = rng(seed);
  const out: { kind: string; request: RuleRequest }[] = [];
  for (let i = 0; i < count; i++) {
    const roll = r();
    const name = `${pick(r, FIRST)} ${pick(r, LAST)}`;
    const email = `${pick(r, FIRST).toLowerCase().replace(/[^a-z]/g, "")}.${
      pick(r, LAST).toLowerCase().replace(/[^a-z]/g, "")
    }${Math.floor(r() * 100)}@${
      pick(r, ["gmail.com", "example.org", "mail.co.uk", "outlook.com"])
    }`;
    let kind: string;
    let req: RuleRequest;
    if (roll < 0.3) {
      kind = "page";
      const q: [string, string][] = [];
      if (r() < 0.5) q.push(["page", String(1 + Math.floor(r() * 20))]);
      if (r() < 0.3) q.push(["sort", pick(r, ["price_asc", "price_desc", "newest", "rating"])]);
      if (r() < 0.3) {
        q.push(["utm_source", pick(r, ["newsletter", "google", "facebook"])], [
          "utm_medium",
          "email",
        ], ["utm_campaign", "spring_sale-2024"]);
      }
      if (r() < 0.2) {
        q.push(["color", pick(r, ["red", "navy blue", "off-white"])], [
          "size",
          pick(r, ["S", "M", "L", "XL", "10.5"]),
        ]);
      }
      const target = pick(r, PAGES) + (q.length ? `?${formEncode(q)}` : "");
      req = {
        method: "GET",
        target,
        protocol: "HTTP/1.1",
        headers: baseHeaders(r),
        remoteAddr: "203.0.113.7",
      };
    } else if (roll < 0.5) {
      kind = "search";
      const term = utf8Bytes(pick(r, SEARCH));
      const q: [string, string][] = [["q", term]];
      if (r() < 0.4) {
        q.push(["category", pick(r, ["all", "books", "electronics", "home & garden"])]);
      }
      const target = `/search?${formEncode(q)}`;
      req = {
        method: "GET",
        target,
        protocol: "HTTP/1.1",
        headers: baseHeaders(r),
        remoteAddr: "198.51.100.23",
      };
    } else if (roll < 0.72) {
      kind = "form";
      const form = pick(r, ["contact", "signup", "address", "review", "login"]);
      let pairs: [string, string][];
      if (form === "contact") {
        pairs = [["name", name], ["email", email], [
          "subject",
          pick(r, ["Order question", "Return request", "Where's my parcel?", "Partnership"]),
        ], ["message", sentence(r, 8 + Math.floor(r() * 25))]];
      } else if (form === "signup") {
        pairs = [
          ["first_name", pick(r, FIRST)],
          ["last_name", pick(r, LAST)],
          ["email", email],
          [
            "password",
            `${pick(r, WORDS)}${Math.floor(r() * 9999)}!${pick(r, ["A", "x", "#", "Q"])}`,
          ],
          ["newsletter", pick(r, ["on", "off"])],
          ["terms", "accepted"],
        ];
      } else if (form === "address") {
        pairs = [
          ["full_name", name],
          ["street", `${1 + Math.floor(r() * 200)} ${pick(r, STREETS)}`],
          ["city", pick(r, CITIES)],
          ["zip", String(10000 + Math.floor(r() * 89999))],
          ["country", pick(r, ["US", "DE", "FR", "IE", "CH"])],
          ["phone", `+1 (555) ${100 + Math.floor(r() * 900)}-${1000 + Math.floor(r() * 9000)}`],
          [
            "notes",
            pick(r, [
              "Leave at the door",
              "Ring twice, it's the 2nd floor",
              "",
              "Call before delivery",
            ]),
          ],
        ];
      } else if (form === "review") {
        pairs = [["product_id", String(Math.floor(r() * 10000))], [
          "rating",
          String(1 + Math.floor(r() * 5)),
        ], [
          "title",
          pick(r, ["Great value!", "Not what I expected", "Works as described", "Kids love it"]),
        ], ["review", sentence(r, 12 + Math.floor(r() * 40))]];
      } else {
        pairs = [
          ["username", email],
          ["password", `${pick(r, WORDS)}_${Math.floor(r() * 99999)}`],
          ["remember_me", "1"],
          ["csrf_token", Math.floor(r() * 1e16).toString(16) + Math.floor(r() * 1e16).toString(16)],
        ];
      }
      const body = enc.encode(formEncode(pairs.map(([k, v]) => [k, utf8Bytes(v)])));
      req = {
        method: "POST",
        target: `/${form}`,
        protocol: "HTTP/1.1",
        headers: [...baseHeaders(r), ["Content-Type", "application/x-www-form-urlencoded"], [
          "Content-Length",
          String(body.length),
        ], ["Origin", "https://shop.example.com"]],
        remoteAddr: "192.0.2.44",
        body: Uint8Array.from(formEncode(pairs.map(([k, v]) => [k, v])), (c) => c.charCodeAt(0)),
      };
      req.body = enc.encode(formEncode(pairs));
    } else if (roll < 0.92) {
      kind = "json";
      const api = pick(r, ["order", "user", "search", "cart", "event"]);
      let obj: unknown;
      if (api === "order") {
        obj = {
          customer: { name, email },
          items: [{
            sku: `SKU-${Math.floor(r() * 99999)}`,
            qty: 1 + Math.floor(r() * 3),
            price: Math.round(r() * 20000) / 100,
          }],
          shipping: { street: pick(r, STREETS), city: pick(r, CITIES) },
          note: pick(r, [
            "Gift wrap, please!",
            "",
            "It's a birthday present",
            'Use the "side" door',
          ]),
        };
      } else if (api === "user") {
        obj = {
          displayName: name,
          bio: sentence(r, 10),
          preferences: { newsletter: r() < 0.5, language: pick(r, ["en", "de", "fr"]) },
          tags: ["customer", pick(r, ["vip", "new", "returning"])],
        };
      } else if (api === "search") {
        obj = {
          query: pick(r, SEARCH),
          filters: { priceMin: 0, priceMax: Math.floor(r() * 500), inStock: true },
          page: 1 + Math.floor(r() * 5),
          sort: pick(r, ["relevance", "-price", "created_at"]),
        };
      } else if (api === "cart") {
        obj = {
          cartId: Math.floor(r() * 1e12).toString(36),
          op: pick(r, ["add", "remove", "update"]),
          sku: `SKU-${Math.floor(r() * 99999)}`,
          qty: 1 + Math.floor(r() * 4),
        };
      } else {
        obj = {
          event: pick(r, ["page_view", "add_to_cart", "purchase"]),
          ts: 1714000000000 + Math.floor(r() * 1e9),
          props: { path: pick(r, PAGES), referrer: "https://www.google.com/", screen: "1920x1080" },
        };
      }
      const body = enc.encode(JSON.stringify(obj));
      req = {
        method: "POST",
        target: `/api/v1/${api}${r() < 0.3 ? `?lang=${pick(r, ["en", "de"])}` : ""}`,
        protocol: "HTTP/1.1",
        headers: [...baseHeaders(r, "application/json"), ["Content-Type", "application/json"], [
          "Content-Length",
          String(body.length),
        ], [
          "Authorization",
          `Bearer ${Math.floor(r() * 1e16).toString(36)}.${Math.floor(r() * 1e16).toString(36)}`,
        ]],
        remoteAddr: "192.0.2.90",
        body,
      };
    } else {
      kind = "upload";
      const boundary = `----WebKitFormBoundary${Math.floor(r() * 1e16).toString(36)}`;
      const file = pick(r, [
        "photo.jpg",
        "IMG_2041.JPG",
        "report-2024 (final).pdf",
        "résumé.docx",
        "data.csv",
        "avatar.png",
        "notes.txt",
      ]);
      const content = file.endsWith(".csv")
        ? 'id,name,amount\n1,Widget,9.99\n2,"Gadget, large",19.50\n'
        : file.endsWith(".txt")
        ? sentence(r, 20)
        : String.fromCharCode(...Array.from({ length: 200 }, () => Math.floor(r() * 256)));
      const body =
        `--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n${
          utf8Bytes(pick(r, ["Holiday pics", "Q2 report", "My CV", "Receipt"]))
        }\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${
          utf8Bytes(file)
        }"\r\nContent-Type: ${
          file.endsWith(".pdf")
            ? "application/pdf"
            : file.endsWith(".csv")
            ? "text/csv"
            : file.endsWith(".txt")
            ? "text/plain"
            : "application/octet-stream"
        }\r\n\r\n${content}\r\n--${boundary}--\r\n`;
      const bytes = Uint8Array.from(body, (c) => c.charCodeAt(0) & 0xff);
      req = {
        method: "POST",
        target: "/upload",
        protocol: "HTTP/1.1",
        headers: [
          ...baseHeaders(r),
          ["Content-Type", `multipart/form-data; boundary=${boundary}`],
          ["Content-Length", String(bytes.length)],
        ],
        remoteAddr: "198.51.100.5",
        body: bytes,
      };
    }
    out.push({ kind, request: req });
  }
  return out;
}
