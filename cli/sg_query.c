/* sg_query: a JMESPath subset evaluator over cJSON and the AWS CLI "text" formatter.
 *
 * Shape: the expression is lexed into a token array in one pass, parsed by a Pratt parser
 * (top-down operator precedence, the technique the JMESPath reference grammar is written
 * for) into a small tree, and the tree is evaluated against the document. Errors are
 * reported, never printed, and every exit of every function goes through one cleanup path. */
#include "sg_query.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of a token echoed in an error message; the rest is elided with "...". */
#define SG_QUERY_ERR_TOKEN_MAX 24

/* ------------------------------------------------------------------------------------------ */
/* Tokens                                                                                     */
/* ------------------------------------------------------------------------------------------ */

enum tok_kind {
	TK_EOF,
	TK_IDENT,       /* unquoted identifier */
	TK_QUOTED,      /* "quoted identifier" */
	TK_NUMBER,      /* -?[0-9]+, only meaningful inside [ ] */
	TK_DOT,
	TK_STAR,
	TK_LBRACKET,
	TK_FLATTEN,     /* "[]" with nothing in between, as JMESPath lexes it */
	TK_RBRACKET,
	TK_LBRACE,
	TK_RBRACE,
	TK_COMMA,
	TK_COLON,
	TK_PIPE,
	TK_AT,
	/* The two kinds below end the token stream: the lexer stops at the first one, and the
	 * parser reports it as soon as it reaches it, so the first problem in parse order wins. */
	TK_UNSUPPORTED, /* valid JMESPath that this subset does not implement */
	TK_INVALID,     /* not JMESPath at all */
};

struct tok {
	enum tok_kind kind;
	size_t off;       /* byte offset in the expression */
	size_t len;       /* bytes of the expression this token spans (echoed in errors) */
	long num;         /* TK_NUMBER */
	char *text;       /* TK_IDENT, TK_QUOTED: decoded name; moved into the tree when used */
	const char *what; /* TK_UNSUPPORTED: feature name; TK_INVALID: reason */
};

/* ------------------------------------------------------------------------------------------ */
/* Parse tree                                                                                 */
/* ------------------------------------------------------------------------------------------ */

enum node_kind {
	ND_CURRENT,     /* @ */
	ND_FIELD,       /* name */
	ND_INDEX,       /* [N] applied to the current node */
	ND_CHAIN,       /* a.b, a[0], a | b: each child is applied to the previous child's result */
	ND_PROJECT,     /* lhs[*].rhs, lhs[].rhs, lhs.*.rhs */
	ND_MULTI_LIST,  /* [e1, e2] */
	ND_MULTI_HASH,  /* {k1: e1, k2: e2} */
};

enum proj_kind {
	PJ_LIST,    /* [*]: over the elements of a list */
	PJ_FLATTEN, /* []: over the elements of a list, nested lists spliced in one level */
	PJ_VALUES,  /* *: over the values of an object */
};

struct node {
	enum node_kind kind;
	unsigned depth;       /* height of this subtree; bounded by SG_QUERY_MAX_DEPTH */
	char *name;           /* ND_FIELD */
	long index;           /* ND_INDEX */
	enum proj_kind proj;  /* ND_PROJECT */
	struct node *lhs;     /* ND_PROJECT: what is projected; NULL means the current node */
	struct node *rhs;     /* ND_PROJECT: applied to each element; NULL means the element */
	/* ND_CHAIN, ND_MULTI_LIST, ND_MULTI_HASH. A chain is n-ary rather than a left-leaning
	 * binary tree so that "a.b.c.d..." and "a[0][0]..." stay shallow: only real nesting
	 * counts against SG_QUERY_MAX_DEPTH. */
	struct node **kids;
	char **keys;          /* ND_MULTI_HASH: keys[i] names kids[i] */
	size_t nkids;
	size_t capkids;
};

struct parser {
	const char *expr;
	struct tok *toks;
	size_t pos;
	unsigned depth;       /* current recursion depth of parse_expr */
	char *errbuf;
	size_t errlen;
};

/* Binding powers, as in the JMESPath reference grammar. Only relative order matters. */
enum {
	BP_NONE = 0,
	BP_PIPE = 1,
	BP_FLATTEN = 9,
	BP_PROJECTION_STOP = 10, /* tokens binding weaker than this end a projection's rhs */
	BP_STAR = 20,
	BP_DOT = 40,
	BP_LBRACE = 50,
	BP_LBRACKET = 55,
	/* Made to bind tighter than anything so that the Pratt loop always hands them to the
	 * led step, which reports them: "a || b" must say "unsupported", not "unexpected". */
	BP_REPORT = 100,
};

static void node_free(struct node *n)
{
	size_t i;

	if (n == NULL)
		return;
	/* Recursion here is bounded by the tree height, which the parser caps. */
	for (i = 0; i < n->nkids; i++) {
		node_free(n->kids[i]);
		if (n->keys != NULL)
			free(n->keys[i]);
	}
	free(n->kids);
	free(n->keys);
	node_free(n->lhs);
	node_free(n->rhs);
	free(n->name);
	free(n);
}

static void toks_free(struct tok *toks, size_t ntok)
{
	size_t i;

	if (toks == NULL)
		return;
	for (i = 0; i < ntok; i++)
		free(toks[i].text);
	free(toks);
}

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static void set_err(char *errbuf, size_t errlen, const char *msg)
{
	if (errlen > 0)
		snprintf(errbuf, errlen, "%s", msg);
}

/* Writes "<message> at offset N" and returns -EINVAL, so callers can "return fail(...)". */
__attribute__((format(printf, 3, 4)))
static int fail(struct parser *p, size_t off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->errlen == 0)
		return -EINVAL;
	va_start(ap, fmt);
	n = vsnprintf(p->errbuf, p->errlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < p->errlen)
		snprintf(p->errbuf + n, p->errlen - (size_t)n, " at offset %zu", off);
	return -EINVAL;
}

/* Copies expr[off, off+len) into buf for an error message. Control and non-ASCII bytes are
 * escaped so the message stays one line of plain ASCII whatever the user typed (a token may
 * start or be cut in the middle of a UTF-8 sequence); long tokens are elided. */
static const char *render(const char *expr, size_t off, size_t len, char *buf, size_t bufsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < len && i < SG_QUERY_ERR_TOKEN_MAX && o + 5 < bufsz; i++) {
		unsigned char c = (unsigned char)expr[off + i];

		if (c < 0x20 || c >= 0x7f) {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 0xf];
		} else {
			buf[o++] = (char)c;
		}
	}
	if (i < len && o + 4 <= bufsz) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/* Reports the token t as out of place. expected (may be NULL) says what was wanted. */
static int fail_at_token(struct parser *p, const struct tok *t, const char *expected)
{
	char text[SG_QUERY_ERR_TOKEN_MAX * 4 + 8];

	switch (t->kind) {
	case TK_INVALID:
		if (t->len == 0)
			return fail(p, t->off, "%s", t->what);
		return fail(p, t->off, "%s '%s'", t->what,
			    render(p->expr, t->off, t->len, text, sizeof(text)));
	case TK_UNSUPPORTED:
		return fail(p, t->off, "unsupported JMESPath feature '%s' (%s)",
			    render(p->expr, t->off, t->len, text, sizeof(text)), t->what);
	case TK_EOF:
		if (expected != NULL)
			return fail(p, t->off, "unexpected end of expression (expected %s)", expected);
		return fail(p, t->off, "unexpected end of expression");
	default:
		render(p->expr, t->off, t->len, text, sizeof(text));
		if (expected != NULL)
			return fail(p, t->off, "unexpected '%s' (expected %s)", text, expected);
		return fail(p, t->off, "unexpected '%s'", text);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Lexer                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static bool is_ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(unsigned char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

static void mark_bad(struct tok *t, enum tok_kind kind, size_t off, size_t len, const char *what)
{
	t->kind = kind;
	t->off = off;
	t->len = len;
	t->what = what;
}

/* Reads 4 hex digits at s (NUL-terminated, so running off the end stops at the NUL). */
static bool read_hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return false;
	}
	*out = v;
	return true;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Lexes a "quoted identifier" starting at s[*pos] == '"'. The body is a JSON string, so the
 * JSON escapes are decoded. A malformed body turns t into TK_INVALID (not an error return):
 * only running out of memory fails. */
static int lex_quoted(const char *s, size_t len, size_t *pos, struct tok *t)
{
	size_t start = *pos, i = *pos + 1, o = 0;
	char *buf = NULL;
	int rc = 0;

	/* Decoding never grows the text (the shortest escape, \n, is 2 bytes for 1; \uXXXX is 6
	 * for at most 3), so the rest of the expression is a safe upper bound. */
	buf = malloc(len - start);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		unsigned char c;
		unsigned cp, lo;

		if (i >= len) {
			mark_bad(t, TK_INVALID, start, 0, "unterminated quoted identifier");
			goto out;
		}
		c = (unsigned char)s[i];
		if (c == '"') {
			i++;
			break;
		}
		if (c < 0x20) {
			mark_bad(t, TK_INVALID, i, 0, "control character in quoted identifier");
			goto out;
		}
		if (c != '\\') {
			buf[o++] = (char)c;
			i++;
			continue;
		}
		switch (s[i + 1]) {
		case '"': buf[o++] = '"'; break;
		case '\\': buf[o++] = '\\'; break;
		case '/': buf[o++] = '/'; break;
		case 'b': buf[o++] = '\b'; break;
		case 'f': buf[o++] = '\f'; break;
		case 'n': buf[o++] = '\n'; break;
		case 'r': buf[o++] = '\r'; break;
		case 't': buf[o++] = '\t'; break;
		case 'u':
			if (!read_hex4(s + i + 2, &cp)) {
				mark_bad(t, TK_INVALID, i, 0, "invalid \\u escape in quoted identifier");
				goto out;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				/* A high surrogate is only valid followed by an escaped low surrogate. */
				if (s[i + 6] != '\\' || s[i + 7] != 'u' || !read_hex4(s + i + 8, &lo) ||
				    lo < 0xdc00 || lo > 0xdfff) {
					mark_bad(t, TK_INVALID, i, 0,
						 "unpaired surrogate in quoted identifier");
					goto out;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				mark_bad(t, TK_INVALID, i, 0, "unpaired surrogate in quoted identifier");
				goto out;
			} else if (cp == 0) {
				/* cJSON keys are C strings: no key can contain NUL, so say so. */
				mark_bad(t, TK_INVALID, i, 0, "NUL character in quoted identifier");
				goto out;
			}
			o += put_utf8(buf + o, cp);
			i += 4; /* the 2 bytes of "\u" are skipped below */
			break;
		default:
			mark_bad(t, TK_INVALID, i, 0, "invalid escape in quoted identifier");
			goto out;
		}
		i += 2;
	}
	buf[o] = '\0';
	t->kind = TK_QUOTED;
	t->off = start;
	t->len = i - start;
	t->text = buf;
	buf = NULL;
	*pos = i;
out:
	free(buf);
	return rc;
}

/* Splits s (len bytes, NUL-terminated) into tokens ending with TK_EOF, or with a
 * TK_UNSUPPORTED/TK_INVALID token followed by TK_EOF. Returns 0 or -ENOMEM. */
static int lex(const char *s, size_t len, struct tok **out, size_t *ntok)
{
	struct tok *toks = NULL;
	size_t n = 0, i = 0;
	int rc = 0;

	/* Every token but the final TK_EOF consumes at least one byte. */
	toks = calloc(len + 1, sizeof(*toks));
	if (toks == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		struct tok *t;
		unsigned char c;

		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
			i++;
		t = &toks[n++];
		t->off = i;
		t->len = 1;
		if (i >= len) {
			t->kind = TK_EOF;
			t->len = 0;
			break;
		}
		c = (unsigned char)s[i];
		switch (c) {
		case '.': t->kind = TK_DOT; break;
		case '*': t->kind = TK_STAR; break;
		case ']': t->kind = TK_RBRACKET; break;
		case '{': t->kind = TK_LBRACE; break;
		case '}': t->kind = TK_RBRACE; break;
		case ',': t->kind = TK_COMMA; break;
		case ':': t->kind = TK_COLON; break;
		case '@': t->kind = TK_AT; break;
		case '[':
			if (s[i + 1] == ']') {
				t->kind = TK_FLATTEN;
				t->len = 2;
			} else if (s[i + 1] == '?') {
				mark_bad(t, TK_UNSUPPORTED, i, 2, "filter expression");
			} else {
				t->kind = TK_LBRACKET;
			}
			break;
		case '|':
			if (s[i + 1] == '|')
				mark_bad(t, TK_UNSUPPORTED, i, 2, "or-expression");
			else
				t->kind = TK_PIPE;
			break;
		case '&':
			if (s[i + 1] == '&')
				mark_bad(t, TK_UNSUPPORTED, i, 2, "and-expression");
			else
				mark_bad(t, TK_UNSUPPORTED, i, 1, "expression reference");
			break;
		case '!':
			if (s[i + 1] == '=')
				mark_bad(t, TK_UNSUPPORTED, i, 2, "comparison");
			else
				mark_bad(t, TK_UNSUPPORTED, i, 1, "not-expression");
			break;
		case '<':
		case '>':
			mark_bad(t, TK_UNSUPPORTED, i, s[i + 1] == '=' ? 2 : 1, "comparison");
			break;
		case '=':
			if (s[i + 1] == '=')
				mark_bad(t, TK_UNSUPPORTED, i, 2, "comparison");
			else
				mark_bad(t, TK_INVALID, i, 1, "invalid character");
			break;
		case '(':
			/* Name the feature the user most likely meant: "length(" is a function call. */
			if (n >= 2 && toks[n - 2].kind == TK_IDENT)
				mark_bad(t, TK_UNSUPPORTED, toks[n - 2].off, i + 1 - toks[n - 2].off,
					 "function call");
			else
				mark_bad(t, TK_UNSUPPORTED, i, 1, "parenthesised expression");
			break;
		case ')':
			mark_bad(t, TK_UNSUPPORTED, i, 1, "parenthesised expression");
			break;
		case '`':
			mark_bad(t, TK_UNSUPPORTED, i, 1, "JSON literal");
			break;
		case '\'':
			mark_bad(t, TK_UNSUPPORTED, i, 1, "raw string literal");
			break;
		case '"':
			rc = lex_quoted(s, len, &i, t);
			if (rc < 0)
				goto out;
			if (t->kind == TK_QUOTED)
				continue; /* lex_quoted advanced i */
			break;
		default:
			if (c == '-' || (c >= '0' && c <= '9')) {
				size_t j = i + (c == '-');
				char *end = NULL;

				if (!(s[j] >= '0' && s[j] <= '9')) {
					mark_bad(t, TK_INVALID, i, 1, "invalid character");
					break;
				}
				while (s[j] >= '0' && s[j] <= '9')
					j++;
				errno = 0;
				t->num = strtol(s + i, &end, 10);
				if (errno == ERANGE || end != s + j) {
					mark_bad(t, TK_INVALID, i, j - i, "array index out of range");
					break;
				}
				t->kind = TK_NUMBER;
				t->len = j - i;
				i = j;
				continue;
			}
			if (is_ident_start(c)) {
				size_t j = i + 1;

				while (is_ident_char((unsigned char)s[j]))
					j++;
				t->text = strndup(s + i, j - i);
				if (t->text == NULL) {
					rc = -ENOMEM;
					goto out;
				}
				t->kind = TK_IDENT;
				t->len = j - i;
				i = j;
				continue;
			}
			mark_bad(t, TK_INVALID, i, 1, "invalid character");
			break;
		}
		if (t->kind == TK_UNSUPPORTED || t->kind == TK_INVALID) {
			/* The parser stops here at the latest; the remaining bytes are never looked at,
			 * and this token consumed at least one byte, so toks[n] is in bounds. */
			toks[n].kind = TK_EOF;
			toks[n].off = t->off;
			n++;
			break;
		}
		i += t->len;
	}
	*out = toks;
	*ntok = n;
	toks = NULL;
out:
	toks_free(toks, n);
	return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Parser                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static bool tok_ends_stream(enum tok_kind k)
{
	return k == TK_EOF || k == TK_UNSUPPORTED || k == TK_INVALID;
}

/* The token `ahead` positions from the current one; never looks past the end of the stream. */
static const struct tok *peek(const struct parser *p, size_t ahead)
{
	size_t i = p->pos;

	while (ahead-- > 0 && !tok_ends_stream(p->toks[i].kind))
		i++;
	return &p->toks[i];
}

/* Moves the current token's decoded name out of the token, into the tree being built. */
static char *take_text(struct parser *p)
{
	char *text = p->toks[p->pos].text;

	p->toks[p->pos].text = NULL;
	return text;
}

static void advance(struct parser *p)
{
	if (!tok_ends_stream(p->toks[p->pos].kind))
		p->pos++;
}

static int lbp(const struct tok *t)
{
	switch (t->kind) {
	case TK_PIPE: return BP_PIPE;
	case TK_FLATTEN: return BP_FLATTEN;
	case TK_STAR: return BP_STAR;
	case TK_DOT: return BP_DOT;
	case TK_LBRACE: return BP_LBRACE;
	case TK_LBRACKET: return BP_LBRACKET;
	case TK_UNSUPPORTED:
	case TK_INVALID: return BP_REPORT;
	default: return BP_NONE;
	}
}

static int expect(struct parser *p, enum tok_kind kind, const char *desc)
{
	const struct tok *t = peek(p, 0);

	if (t->kind != kind)
		return fail_at_token(p, t, desc);
	advance(p);
	return 0;
}

static int node_new(enum node_kind kind, struct node **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	(*out)->kind = kind;
	(*out)->depth = 1;
	return 0;
}

/* Records that child now hangs below n and enforces the height cap, which is what bounds
 * the evaluator's (and node_free's) recursion. */
static int note_child(struct parser *p, struct node *n, const struct node *child, size_t off)
{
	if (child != NULL && child->depth + 1 > n->depth)
		n->depth = child->depth + 1;
	if (n->depth > SG_QUERY_MAX_DEPTH)
		return fail(p, off, "expression nested deeper than %d levels", SG_QUERY_MAX_DEPTH);
	return 0;
}

/* Appends kid (and key, for a hash) to n; takes ownership of both in every case. */
static int node_push(struct parser *p, struct node *n, struct node *kid, char *key, size_t off)
{
	int rc = 0;

	if (n->nkids == n->capkids) {
		size_t cap = n->capkids ? n->capkids * 2 : 4;
		struct node **kids = realloc(n->kids, cap * sizeof(*kids));

		if (kids == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		n->kids = kids;
		if (n->kind == ND_MULTI_HASH) {
			char **keys = realloc(n->keys, cap * sizeof(*keys));

			if (keys == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			n->keys = keys;
		}
		n->capkids = cap;
	}
	n->kids[n->nkids] = kid;
	if (n->kind == ND_MULTI_HASH)
		n->keys[n->nkids] = key;
	n->nkids++;
	kid = NULL;
	key = NULL;
	rc = note_child(p, n, n->kids[n->nkids - 1], off);
out:
	node_free(kid);
	free(key);
	return rc;
}

/* Builds a projection node; takes ownership of lhs and rhs in every case. */
static int make_project(struct parser *p, enum proj_kind proj, struct node *lhs, struct node *rhs,
			size_t off, struct node **out)
{
	struct node *n = NULL;
	int rc;

	rc = node_new(ND_PROJECT, &n);
	if (rc < 0)
		goto out;
	n->proj = proj;
	n->lhs = lhs;
	n->rhs = rhs;
	lhs = NULL;
	rhs = NULL;
	rc = note_child(p, n, n->lhs, off);
	if (rc == 0)
		rc = note_child(p, n, n->rhs, off);
	if (rc < 0)
		goto out;
	*out = n;
	n = NULL;
out:
	node_free(n);
	node_free(lhs);
	node_free(rhs);
	return rc;
}

/* left followed by rhs ("left.rhs", "left[N]", "left | rhs"). Both are applied in sequence
 * either way; the syntax only differs in how far a projection on the left reaches, which
 * the parser has already settled. Takes ownership of both in every case. */
static int make_chain(struct parser *p, struct node *left, struct node *rhs, size_t off,
		      struct node **out)
{
	struct node *n = NULL;
	int rc = 0;

	if (left->kind == ND_CHAIN) {
		n = left;
	} else {
		rc = node_new(ND_CHAIN, &n);
		if (rc < 0)
			goto out;
		rc = node_push(p, n, left, NULL, off);
		if (rc < 0) {
			left = NULL; /* node_push owns it now and has freed it */
			goto out;
		}
	}
	left = NULL;
	rc = node_push(p, n, rhs, NULL, off);
	rhs = NULL;
	if (rc < 0)
		goto out;
	*out = n;
	n = NULL;
out:
	node_free(n);
	node_free(left);
	node_free(rhs);
	return rc;
}

static int parse_expr(struct parser *p, int rbp, struct node **out);

/* After "[" when the next token is a number or ':'. Slices are recognised only to be named. */
static int parse_index(struct parser *p, size_t lbracket_off, struct node **out)
{
	const struct tok *t = peek(p, 0);
	struct node *n = NULL;
	char text[SG_QUERY_ERR_TOKEN_MAX * 4 + 8];
	long idx;
	int rc;

	if (t->kind == TK_NUMBER && peek(p, 1)->kind != TK_COLON) {
		idx = t->num;
		advance(p);
		rc = expect(p, TK_RBRACKET, "']'");
		if (rc < 0)
			return rc;
		rc = node_new(ND_INDEX, &n);
		if (rc < 0)
			return rc;
		n->index = idx;
		*out = n;
		return 0;
	}
	t = t->kind == TK_NUMBER ? peek(p, 1) : t;
	render(p->expr, lbracket_off, t->off + 1 - lbracket_off, text, sizeof(text));
	return fail(p, lbracket_off, "unsupported JMESPath feature '%s' (slice)", text);
}

/* After "[" (already consumed) in a non-index position: "[a, b.c, ...]". */
static int parse_multi_list(struct parser *p, struct node **out)
{
	struct node *n = NULL, *kid = NULL;
	int rc;

	rc = node_new(ND_MULTI_LIST, &n);
	if (rc < 0)
		goto out;
	for (;;) {
		size_t off = peek(p, 0)->off;
		const struct tok *t;

		rc = parse_expr(p, BP_NONE, &kid);
		if (rc < 0)
			goto out;
		rc = node_push(p, n, kid, NULL, off);
		kid = NULL;
		if (rc < 0)
			goto out;
		t = peek(p, 0);
		if (t->kind == TK_RBRACKET) {
			advance(p);
			break;
		}
		if (t->kind != TK_COMMA) {
			rc = fail_at_token(p, t, "',' or ']'");
			goto out;
		}
		advance(p);
	}
	*out = n;
	n = NULL;
out:
	node_free(n);
	return rc;
}

/* After "{" (already consumed): "{Key: expr, "Other key": expr}". */
static int parse_multi_hash(struct parser *p, struct node **out)
{
	struct node *n = NULL, *kid = NULL;
	char *key = NULL;
	int rc;

	rc = node_new(ND_MULTI_HASH, &n);
	if (rc < 0)
		goto out;
	for (;;) {
		const struct tok *t = peek(p, 0);
		size_t off = t->off, i;

		if (t->kind != TK_IDENT && t->kind != TK_QUOTED) {
			rc = fail_at_token(p, t, "a key");
			goto out;
		}
		key = take_text(p);
		advance(p);
		rc = expect(p, TK_COLON, "':'");
		if (rc < 0)
			goto out;
		rc = parse_expr(p, BP_NONE, &kid);
		if (rc < 0)
			goto out;
		/* A repeated key keeps its first position and takes the last value, like the
		 * dict the AWS CLI builds. Settling it here keeps the result free of duplicate keys
		 * without a lookup per evaluation. */
		for (i = 0; i < n->nkids; i++) {
			if (strcmp(n->keys[i], key) == 0)
				break;
		}
		if (i < n->nkids) {
			node_free(n->kids[i]);
			n->kids[i] = kid;
			kid = NULL;
			free(key);
			key = NULL;
			rc = note_child(p, n, n->kids[i], off);
		} else {
			rc = node_push(p, n, kid, key, off);
			kid = NULL;
			key = NULL;
		}
		if (rc < 0)
			goto out;
		t = peek(p, 0);
		if (t->kind == TK_RBRACE) {
			advance(p);
			break;
		}
		if (t->kind != TK_COMMA) {
			rc = fail_at_token(p, t, "',' or '}'");
			goto out;
		}
		advance(p);
	}
	*out = n;
	n = NULL;
out:
	free(key);
	node_free(kid);
	node_free(n);
	return rc;
}

/* What may follow a dot: a name, "*", "[multi, list]" or "{multi: hash}". */
static int parse_dot_rhs(struct parser *p, int bp, struct node **out)
{
	const struct tok *t = peek(p, 0);

	switch (t->kind) {
	case TK_IDENT:
	case TK_QUOTED:
	case TK_STAR:
		return parse_expr(p, bp, out);
	case TK_LBRACKET:
		advance(p);
		return parse_multi_list(p, out);
	case TK_LBRACE:
		advance(p);
		return parse_multi_hash(p, out);
	default:
		return fail_at_token(p, t, "an identifier, '*', '[' or '{'");
	}
}

/* The expression a projection applies to each element. It reaches as far as tokens binding
 * at least as tightly as a projection do; "|", "]", "," etc. end it. NULL means identity. */
static int parse_projection_rhs(struct parser *p, int bp, struct node **out)
{
	const struct tok *t = peek(p, 0);

	*out = NULL;
	if (lbp(t) < BP_PROJECTION_STOP)
		return 0;
	if (t->kind == TK_LBRACKET)
		return parse_expr(p, bp, out);
	if (t->kind == TK_DOT) {
		advance(p);
		return parse_dot_rhs(p, bp, out);
	}
	return fail_at_token(p, t, NULL);
}

/* A token in prefix position. */
static int parse_nud(struct parser *p, struct node **out)
{
	const struct tok *t = peek(p, 0);
	struct node *n = NULL, *rhs = NULL;
	size_t off = t->off;
	int rc = 0;

	switch (t->kind) {
	case TK_IDENT:
	case TK_QUOTED:
		rc = node_new(ND_FIELD, &n);
		if (rc < 0)
			goto out;
		n->name = take_text(p);
		advance(p);
		break;
	case TK_AT:
		rc = node_new(ND_CURRENT, &n);
		if (rc < 0)
			goto out;
		advance(p);
		break;
	case TK_STAR:
		advance(p);
		rc = parse_projection_rhs(p, BP_STAR, &rhs);
		if (rc < 0)
			goto out;
		rc = make_project(p, PJ_VALUES, NULL, rhs, off, &n);
		rhs = NULL;
		break;
	case TK_FLATTEN:
		advance(p);
		rc = parse_projection_rhs(p, BP_FLATTEN, &rhs);
		if (rc < 0)
			goto out;
		rc = make_project(p, PJ_FLATTEN, NULL, rhs, off, &n);
		rhs = NULL;
		break;
	case TK_LBRACKET: {
		enum tok_kind k1 = peek(p, 1)->kind;

		if (k1 == TK_NUMBER || k1 == TK_COLON) {
			advance(p);
			rc = parse_index(p, off, &n);
		} else if (k1 == TK_STAR && peek(p, 2)->kind == TK_RBRACKET) {
			advance(p);
			advance(p);
			advance(p);
			rc = parse_projection_rhs(p, BP_STAR, &rhs);
			if (rc < 0)
				goto out;
			rc = make_project(p, PJ_LIST, NULL, rhs, off, &n);
			rhs = NULL;
		} else {
			advance(p);
			rc = parse_multi_list(p, &n);
		}
		break;
	}
	case TK_LBRACE:
		advance(p);
		rc = parse_multi_hash(p, &n);
		break;
	default:
		rc = fail_at_token(p, t, NULL);
		break;
	}
	if (rc < 0)
		goto out;
	*out = n;
	n = NULL;
out:
	node_free(rhs);
	node_free(n);
	return rc;
}

/* A token in infix position, with left already parsed. Takes ownership of left in every case. */
static int parse_led(struct parser *p, struct node *left, struct node **out)
{
	const struct tok *t = peek(p, 0);
	struct node *rhs = NULL;
	size_t off = t->off;
	int rc = 0;

	switch (t->kind) {
	case TK_DOT:
		advance(p);
		if (peek(p, 0)->kind == TK_STAR) {
			advance(p);
			/* BP_STAR rather than BP_DOT (jmespath.py's choice) so that "a.*.b.c" projects
			 * "b.c" like "a[*].b.c" and "*.b.c" do; see the header. */
			rc = parse_projection_rhs(p, BP_STAR, &rhs);
			if (rc < 0)
				goto out;
			rc = make_project(p, PJ_VALUES, left, rhs, off, out);
		} else {
			rc = parse_dot_rhs(p, BP_DOT, &rhs);
			if (rc < 0)
				goto out;
			rc = make_chain(p, left, rhs, off, out);
		}
		left = NULL;
		rhs = NULL;
		break;
	case TK_PIPE:
		advance(p);
		rc = parse_expr(p, BP_PIPE, &rhs);
		if (rc < 0)
			goto out;
		rc = make_chain(p, left, rhs, off, out);
		left = NULL;
		rhs = NULL;
		break;
	case TK_FLATTEN:
		advance(p);
		rc = parse_projection_rhs(p, BP_FLATTEN, &rhs);
		if (rc < 0)
			goto out;
		rc = make_project(p, PJ_FLATTEN, left, rhs, off, out);
		left = NULL;
		rhs = NULL;
		break;
	case TK_LBRACKET: {
		const struct tok *t1 = peek(p, 1);

		if (t1->kind == TK_NUMBER || t1->kind == TK_COLON) {
			advance(p);
			rc = parse_index(p, off, &rhs);
			if (rc < 0)
				goto out;
			rc = make_chain(p, left, rhs, off, out);
		} else if (t1->kind == TK_STAR) {
			advance(p);
			advance(p);
			rc = expect(p, TK_RBRACKET, "']'");
			if (rc < 0)
				goto out;
			rc = parse_projection_rhs(p, BP_STAR, &rhs);
			if (rc < 0)
				goto out;
			rc = make_project(p, PJ_LIST, left, rhs, off, out);
		} else {
			rc = fail_at_token(p, t1, "a number or '*'");
			goto out;
		}
		left = NULL;
		rhs = NULL;
		break;
	}
	default:
		/* Includes TK_UNSUPPORTED and TK_INVALID, which bind tightly to end up here. */
		rc = fail_at_token(p, t, NULL);
		break;
	}
out:
	node_free(left);
	node_free(rhs);
	return rc;
}

static int parse_expr(struct parser *p, int rbp, struct node **out)
{
	struct node *left = NULL, *next = NULL;
	int rc;

	*out = NULL;
	if (++p->depth > SG_QUERY_MAX_DEPTH) {
		rc = fail(p, peek(p, 0)->off, "expression nested deeper than %d levels",
			  SG_QUERY_MAX_DEPTH);
		goto out;
	}
	rc = parse_nud(p, &left);
	if (rc < 0)
		goto out;
	while (rbp < lbp(peek(p, 0))) {
		rc = parse_led(p, left, &next);
		left = next;
		next = NULL;
		if (rc < 0)
			goto out;
	}
	*out = left;
	left = NULL;
out:
	p->depth--;
	node_free(left);
	return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Evaluator                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* An intermediate result. Either borrowed (ref: points into the node the expression was
 * evaluated against, which outlives it) or owned (own: a tree built during evaluation), or
 * neither, meaning null. Borrowing is what keeps "a.b.c" from copying "a" and "a.b". */
struct val {
	const cJSON *ref;
	cJSON *own;
};

/* Evaluation state: how many more JSON values evaluation may build. Every container made and
 * every value copied out of the document is charged, so an expression whose result doubles
 * at each step ("[@,@] | [@,@] | ...") fails with -E2BIG instead of exhausting memory. */
struct ev {
	size_t budget;
};

/* Charges n values; -E2BIG when the budget cannot cover them. */
static int charge(struct ev *e, size_t n)
{
	if (n > e->budget)
		return -E2BIG;
	e->budget -= n;
	return 0;
}

/* Values in v's tree, counting stops once past limit (so a huge tree costs at most limit+1). */
static size_t count_values(const cJSON *v, size_t limit)
{
	size_t n = 1;
	const cJSON *c;

	for (c = v->child; c != NULL && n <= limit; c = c->next)
		n += count_values(c, limit - n);
	return n;
}

static const cJSON *val_node(const struct val *v)
{
	return v->own != NULL ? v->own : v->ref;
}

/* JMESPath does not tell a missing key from a JSON null; neither do we. */
static bool val_is_null(const struct val *v)
{
	const cJSON *n = val_node(v);

	return n == NULL || cJSON_IsNull(n);
}

static void val_clear(struct val *v)
{
	cJSON_Delete(v->own);
	v->own = NULL;
	v->ref = NULL;
}

/* Moves v out as an owned tree: the tree itself when owned, a deep copy when borrowed, a
 * fresh null when null. v is left empty, also on failure. */
static int val_take(struct ev *e, struct val *v, cJSON **out)
{
	cJSON *c;
	int rc;

	if (v->own != NULL) {
		*out = v->own;
		v->own = NULL;
		return 0;
	}
	rc = charge(e, v->ref != NULL ? count_values(v->ref, e->budget) : 1);
	if (rc < 0) {
		v->ref = NULL;
		return rc;
	}
	c = v->ref != NULL ? cJSON_Duplicate(v->ref, true) : cJSON_CreateNull();
	v->ref = NULL;
	if (c == NULL)
		return -ENOMEM;
	/* A copy of an object member carries its key along; results and list elements have none. */
	if (c->string != NULL && !(c->type & cJSON_StringIsConst))
		cJSON_free(c->string);
	c->string = NULL;
	c->type &= ~cJSON_StringIsConst;
	*out = c;
	return 0;
}

static bool ascii_ieq(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char ca = (unsigned char)*a, cb = (unsigned char)*b;

		if (ca >= 'A' && ca <= 'Z')
			ca = (unsigned char)(ca - 'A' + 'a');
		if (cb >= 'A' && cb <= 'Z')
			cb = (unsigned char)(cb - 'A' + 'a');
		if (ca != cb)
			return false;
		if (ca == '\0')
			return true;
	}
}

/* The exact key wins; only when it is absent does the first key equal to name ignoring ASCII
 * case match (the documented deviation, so "Jobs" finds "jobs"). ASCII only, so the result
 * does not depend on the locale. */
static const cJSON *lookup_field(const cJSON *cur, const char *name)
{
	const cJSON *c;

	if (!cJSON_IsObject(cur))
		return NULL;
	for (c = cur->child; c != NULL; c = c->next) {
		if (c->string != NULL && strcmp(c->string, name) == 0)
			return c;
	}
	for (c = cur->child; c != NULL; c = c->next) {
		if (c->string != NULL && ascii_ieq(c->string, name))
			return c;
	}
	return NULL;
}

static const cJSON *lookup_index(const cJSON *cur, long idx)
{
	long count;

	if (!cJSON_IsArray(cur))
		return NULL;
	count = cJSON_GetArraySize(cur);
	if (idx < 0) {
		/* Compared before adding so that a huge negative index cannot overflow. */
		if (idx < -count)
			return NULL;
		idx += count;
	}
	if (idx >= count)
		return NULL;
	return cJSON_GetArrayItem(cur, (int)idx);
}

static int eval(struct ev *e, const struct node *n, const cJSON *cur, struct val *out);

static int eval_chain(struct ev *e, const struct node *n, const cJSON *cur, struct val *out)
{
	struct val acc = { .ref = cur, .own = NULL }, next = { 0 };
	size_t i;
	int rc = 0;

	for (i = 0; i < n->nkids; i++) {
		/* Every supported construct maps null to null, so the rest can be skipped. */
		if (val_is_null(&acc))
			break;
		rc = eval(e, n->kids[i], val_node(&acc), &next);
		if (rc < 0)
			goto out;
		if (acc.own != NULL) {
			/* next may borrow from acc, which is about to go: hand acc over when next is
			 * acc itself ("@"), copy out of it otherwise. */
			if (next.ref == acc.own) {
				next.ref = NULL;
				next.own = acc.own;
				acc.own = NULL;
			} else if (next.ref != NULL) {
				cJSON *copy = NULL;

				rc = val_take(e, &next, &copy);
				if (rc < 0)
					goto out;
				next.own = copy;
			}
			val_clear(&acc);
		}
		acc = next;
		next = (struct val){ 0 };
	}
	*out = acc;
	acc = (struct val){ 0 };
out:
	val_clear(&next);
	val_clear(&acc);
	return rc;
}

/* Applies rhs to el and appends the result to list unless it is null. */
static int project_one(struct ev *e, const struct node *rhs, const cJSON *el, cJSON *list)
{
	struct val r = { .ref = el, .own = NULL };
	cJSON *item = NULL;
	int rc = 0;

	if (rhs != NULL) {
		rc = eval(e, rhs, el, &r);
		if (rc < 0)
			goto out;
	}
	if (val_is_null(&r))
		goto out;
	rc = val_take(e, &r, &item);
	if (rc < 0)
		goto out;
	/* Only fails for NULL arguments, which cannot happen here; kept as a check anyway. */
	if (!cJSON_AddItemToArray(list, item)) {
		rc = -ENOMEM;
		goto out;
	}
	item = NULL;
out:
	cJSON_Delete(item);
	val_clear(&r);
	return rc;
}

static int eval_project(struct ev *e, const struct node *n, const cJSON *cur, struct val *out)
{
	struct val base = { .ref = cur, .own = NULL };
	const cJSON *b, *el, *sub;
	cJSON *list = NULL;
	int rc = 0;

	if (n->lhs != NULL) {
		rc = eval(e, n->lhs, cur, &base);
		if (rc < 0)
			goto out;
	}
	b = val_node(&base);
	/* Projecting over the wrong type is null, not an empty list. */
	if (n->proj == PJ_VALUES ? !cJSON_IsObject(b) : !cJSON_IsArray(b))
		goto out;
	rc = charge(e, 1);
	if (rc < 0)
		goto out;
	list = cJSON_CreateArray();
	if (list == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/* Flattening is done on the fly instead of building the flattened list: the projection
	 * is its only consumer (the parser never produces a bare flatten). */
	for (el = b->child; el != NULL; el = el->next) {
		if (n->proj == PJ_FLATTEN && cJSON_IsArray(el)) {
			for (sub = el->child; sub != NULL; sub = sub->next) {
				rc = project_one(e, n->rhs, sub, list);
				if (rc < 0)
					goto out;
			}
		} else {
			rc = project_one(e, n->rhs, el, list);
			if (rc < 0)
				goto out;
		}
	}
	out->own = list;
	list = NULL;
out:
	cJSON_Delete(list);
	val_clear(&base);
	return rc;
}

static int eval_multi(struct ev *e, const struct node *n, const cJSON *cur, struct val *out)
{
	struct val r = { 0 };
	cJSON *container = NULL, *item = NULL;
	size_t i;
	int rc = 0;

	/* A multiselect of null is null, not a list or object of nulls. */
	if (cur == NULL || cJSON_IsNull(cur))
		goto out;
	rc = charge(e, 1);
	if (rc < 0)
		goto out;
	container = n->kind == ND_MULTI_HASH ? cJSON_CreateObject() : cJSON_CreateArray();
	if (container == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n->nkids; i++) {
		rc = eval(e, n->kids[i], cur, &r);
		if (rc < 0)
			goto out;
		rc = val_take(e, &r, &item);
		if (rc < 0)
			goto out;
		/* The parser made hash keys unique, so adding never shadows an earlier member.
		 * Adding fails only when copying the key runs out of memory. */
		if (n->kind == ND_MULTI_HASH ? !cJSON_AddItemToObject(container, n->keys[i], item)
					     : !cJSON_AddItemToArray(container, item)) {
			rc = -ENOMEM;
			goto out;
		}
		item = NULL;
	}
	out->own = container;
	container = NULL;
out:
	cJSON_Delete(item);
	cJSON_Delete(container);
	val_clear(&r);
	return rc;
}

/* Recursion is bounded by the tree height, which the parser caps at SG_QUERY_MAX_DEPTH. */
static int eval(struct ev *e, const struct node *n, const cJSON *cur, struct val *out)
{
	*out = (struct val){ 0 };
	switch (n->kind) {
	case ND_CURRENT:
		out->ref = cur;
		return 0;
	case ND_FIELD:
		out->ref = lookup_field(cur, n->name);
		return 0;
	case ND_INDEX:
		out->ref = lookup_index(cur, n->index);
		return 0;
	case ND_CHAIN:
		return eval_chain(e, n, cur, out);
	case ND_PROJECT:
		return eval_project(e, n, cur, out);
	case ND_MULTI_LIST:
	case ND_MULTI_HASH:
		return eval_multi(e, n, cur, out);
	}
	return -EINVAL;
}

int sg_query_eval(const cJSON *root, const char *expr, cJSON **ret, char *errbuf, size_t errlen)
{
	struct parser p = { .errbuf = errbuf, .errlen = errbuf != NULL ? errlen : 0 };
	struct tok *toks = NULL;
	struct node *tree = NULL;
	struct val v = { 0 };
	struct ev e = { .budget = SG_QUERY_MAX_VALUES };
	size_t len, ntok = 0;
	int rc = 0;

	set_err(p.errbuf, p.errlen, "");
	if (ret != NULL)
		*ret = NULL;
	if (ret == NULL || expr == NULL) {
		set_err(p.errbuf, p.errlen, "no expression or no result pointer");
		rc = -EINVAL;
		goto out;
	}
	/* strnlen so that an absurdly long argument is not scanned to its end. */
	len = strnlen(expr, SG_QUERY_MAX_EXPR_LEN + 1);
	if (len > SG_QUERY_MAX_EXPR_LEN) {
		rc = fail(&p, SG_QUERY_MAX_EXPR_LEN,
			  "expression longer than %d bytes", SG_QUERY_MAX_EXPR_LEN);
		goto out;
	}
	rc = lex(expr, len, &toks, &ntok);
	if (rc < 0)
		goto out;
	p.expr = expr;
	p.toks = toks;
	rc = parse_expr(&p, BP_NONE, &tree);
	if (rc < 0)
		goto out;
	if (peek(&p, 0)->kind != TK_EOF) {
		rc = fail_at_token(&p, peek(&p, 0), NULL);
		goto out;
	}
	rc = eval(&e, tree, root, &v);
	if (rc < 0)
		goto out;
	if (val_is_null(&v))
		val_clear(&v); /* a borrowed JSON null and "no match" both become a fresh null */
	rc = val_take(&e, &v, ret);
out:
	if (rc == -ENOMEM)
		set_err(p.errbuf, p.errlen, "out of memory");
	if (rc == -E2BIG)
		set_err(p.errbuf, p.errlen, "the result would hold more than "
			SG_QUERY_STR(SG_QUERY_MAX_VALUES) " values");
	val_clear(&v);
	node_free(tree);
	toks_free(toks, ntok);
	return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Text output                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* Keys shown as columns when printing a list of objects, sorted with strcmp (byte order,
 * which for UTF-8 is code point order, the order the AWS CLI sorts in). */
struct keyset {
	const char **v;
	size_t n;
};

/* An object member, remembered with its position so that sorting is stable for the
 * duplicate keys cJSON tolerates. */
struct member {
	const cJSON *item;
	size_t pos;
};

static int put(FILE *out, const char *s, size_t n)
{
	if (n == 0)
		return 0;
	errno = 0;
	if (fwrite(s, 1, n, out) != n)
		return errno != 0 ? -errno : -EIO;
	return 0;
}

static int put_str(FILE *out, const char *s)
{
	return put(out, s, strlen(s));
}

static int put_upper(FILE *out, const char *s)
{
	char buf[64];
	size_t o = 0;
	int rc;

	for (; *s != '\0'; s++) {
		char c = *s;

		buf[o++] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
		if (o == sizeof(buf)) {
			rc = put(out, buf, o);
			if (rc < 0)
				return rc;
			o = 0;
		}
	}
	return put(out, buf, o);
}

static bool is_container(const cJSON *v)
{
	return cJSON_IsArray(v) || cJSON_IsObject(v);
}

/* Numbers print the way Python prints them, which is what the AWS CLI shows: integers
 * without a fraction, others in the shortest form that reads back to the same double. */
static void format_number(double d, char *buf, size_t bufsz)
{
	int prec;

	if (isnan(d)) {
		snprintf(buf, bufsz, "nan");
		return;
	}
	if (isinf(d)) {
		snprintf(buf, bufsz, "%s", d < 0 ? "-inf" : "inf");
		return;
	}
	for (prec = 15; prec < 17; prec++) {
		snprintf(buf, bufsz, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			return;
	}
	snprintf(buf, bufsz, "%.17g", d);
}

/* One value in scalar position. A container can only land here as a column of a list of
 * objects whose other elements hold a scalar under the same key; the AWS CLI prints Python's
 * repr there, we print compact JSON. */
static int put_scalar(FILE *out, const cJSON *v)
{
	char num[64];
	char *json = NULL;
	int rc;

	if (v == NULL || cJSON_IsNull(v) || cJSON_IsInvalid(v))
		return put_str(out, "None");
	if (cJSON_IsTrue(v))
		return put_str(out, "True"); /* Python's str(True), as the AWS CLI prints it */
	if (cJSON_IsFalse(v))
		return put_str(out, "False");
	if (cJSON_IsNumber(v)) {
		format_number(v->valuedouble, num, sizeof(num));
		return put_str(out, num);
	}
	if (cJSON_IsString(v) || cJSON_IsRaw(v))
		return put_str(out, v->valuestring != NULL ? v->valuestring : "");
	json = cJSON_PrintUnformatted(v);
	if (json == NULL)
		return -ENOMEM;
	rc = put_str(out, json);
	cJSON_free(json);
	return rc;
}

static int cmp_member(const void *a, const void *b)
{
	const struct member *ma = a, *mb = b;
	int c = strcmp(ma->item->string, mb->item->string);

	if (c != 0)
		return c;
	return ma->pos < mb->pos ? -1 : ma->pos > mb->pos;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool keyset_has(const struct keyset *ks, const char *key)
{
	return ks->n > 0 && bsearch(&key, ks->v, ks->n, sizeof(*ks->v), cmp_key) != NULL;
}

/* Collects obj's members (those with a key) sorted by key. */
static int sorted_members(const cJSON *obj, struct member **out, size_t *n)
{
	const cJSON *c;
	size_t count = 0, i = 0;

	*out = NULL;
	*n = 0;
	for (c = obj->child; c != NULL; c = c->next)
		count++;
	if (count == 0)
		return 0;
	*out = calloc(count, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	for (c = obj->child; c != NULL; c = c->next) {
		if (c->string == NULL)
			continue;
		(*out)[i].item = c;
		(*out)[i].pos = i;
		i++;
	}
	qsort(*out, i, sizeof(**out), cmp_member);
	*n = i;
	return 0;
}

static int pt_value(FILE *out, const cJSON *v, const char *ident, const struct keyset *ks,
		    unsigned depth);

/* An object: its scalars on one line (prefixed by the upper-cased key it sits under, if any),
 * then every nested list/object under its own key. With ks (the object is an element of a
 * list of objects) the columns are ks, so that all rows of the list line up. */
static int pt_object(FILE *out, const cJSON *obj, const char *ident, const struct keyset *ks,
		     unsigned depth)
{
	struct member *m = NULL;
	size_t nm = 0, i, ncols = 0;
	int rc;

	rc = sorted_members(obj, &m, &nm);
	if (rc < 0)
		goto out;
	if (ks != NULL) {
		ncols = ks->n;
	} else {
		for (i = 0; i < nm; i++)
			ncols += !is_container(m[i].item);
	}
	if (ncols > 0) {
		bool first = true;

		if (ident != NULL) {
			rc = put_upper(out, ident);
			if (rc < 0)
				goto out;
			first = false;
		}
		for (i = 0; i < (ks != NULL ? ks->n : nm); i++) {
			const cJSON *cell;

			if (ks != NULL) {
				cell = cJSON_GetObjectItemCaseSensitive(obj, ks->v[i]);
			} else {
				cell = m[i].item;
				if (is_container(cell))
					continue;
			}
			if (!first) {
				rc = put(out, "\t", 1);
				if (rc < 0)
					goto out;
			}
			first = false;
			/* A column this element lacks is empty, as in the AWS CLI. */
			if (cell != NULL)
				rc = put_scalar(out, cell);
			if (rc < 0)
				goto out;
		}
		rc = put(out, "\n", 1);
		if (rc < 0)
			goto out;
	}
	for (i = 0; i < nm; i++) {
		const cJSON *c = m[i].item;

		if (ks != NULL ? keyset_has(ks, c->string) : !is_container(c))
			continue;
		rc = pt_value(out, c, c->string, NULL, depth + 1);
		if (rc < 0)
			goto out;
	}
out:
	free(m);
	return rc;
}

/* Scalars of a list: on one line, or one "IDENT\tvalue" line each under a key. */
static int pt_scalar_row(FILE *out, const cJSON *list, const char *ident)
{
	const cJSON *el;
	bool first = true;
	int rc = 0;

	for (el = list->child; el != NULL; el = el->next) {
		if (is_container(el))
			continue;
		if (ident != NULL) {
			rc = put_upper(out, ident);
			if (rc == 0)
				rc = put(out, "\t", 1);
		} else if (!first) {
			rc = put(out, "\t", 1);
		}
		if (rc == 0)
			rc = put_scalar(out, el);
		if (rc == 0 && ident != NULL)
			rc = put(out, "\n", 1);
		if (rc < 0)
			return rc;
		first = false;
	}
	if (ident == NULL && !first)
		rc = put(out, "\n", 1);
	return rc;
}

static int pt_list(FILE *out, const cJSON *list, const char *ident, unsigned depth)
{
	struct keyset ks = { 0 };
	const cJSON *el, *c;
	bool has_obj = false, has_list = false, has_scalar = false;
	size_t cap = 0, i, n;
	int rc = 0;

	for (el = list->child; el != NULL; el = el->next) {
		if (cJSON_IsObject(el)) {
			has_obj = true;
			for (c = el->child; c != NULL; c = c->next)
				cap++;
		} else if (cJSON_IsArray(el)) {
			has_list = true;
		} else {
			has_scalar = true;
		}
	}
	if (has_obj) {
		/* Columns: every key holding a scalar in any of the objects, sorted, once. */
		if (cap > 0) {
			ks.v = calloc(cap, sizeof(*ks.v));
			if (ks.v == NULL) {
				rc = -ENOMEM;
				goto out;
			}
		}
		for (el = list->child; el != NULL; el = el->next) {
			if (!cJSON_IsObject(el))
				continue;
			for (c = el->child; c != NULL; c = c->next) {
				if (c->string != NULL && !is_container(c))
					ks.v[ks.n++] = c->string;
			}
		}
		if (ks.n > 0) {
			qsort(ks.v, ks.n, sizeof(*ks.v), cmp_key);
			for (i = 1, n = 1; i < ks.n; i++) {
				if (strcmp(ks.v[i], ks.v[n - 1]) != 0)
					ks.v[n++] = ks.v[i];
			}
			ks.n = n;
		}
		for (el = list->child; el != NULL; el = el->next) {
			rc = pt_value(out, el, ident, &ks, depth + 1);
			if (rc < 0)
				goto out;
		}
	} else if (has_list) {
		/* Scalars mixed into a list of lists come first, on a line of their own. */
		if (has_scalar) {
			rc = pt_scalar_row(out, list, ident);
			if (rc < 0)
				goto out;
		}
		for (el = list->child; el != NULL; el = el->next) {
			if (!cJSON_IsArray(el))
				continue;
			rc = pt_value(out, el, ident, NULL, depth + 1);
			if (rc < 0)
				goto out;
		}
	} else if (has_scalar) {
		rc = pt_scalar_row(out, list, ident);
	}
out:
	free(ks.v);
	return rc;
}

/* Recursion follows the document's nesting, capped at SG_QUERY_MAX_PRINT_DEPTH (which
 * cJSON_Parse already enforces on anything parsed). */
static int pt_value(FILE *out, const cJSON *v, const char *ident, const struct keyset *ks,
		    unsigned depth)
{
	int rc;

	if (depth > SG_QUERY_MAX_PRINT_DEPTH)
		return -ELOOP;
	if (cJSON_IsObject(v))
		return pt_object(out, v, ident, ks, depth);
	if (cJSON_IsArray(v))
		return pt_list(out, v, ident, depth);
	/* A bare scalar is printed as is, even under a key (the AWS CLI does the same). */
	rc = put_scalar(out, v);
	if (rc == 0)
		rc = put(out, "\n", 1);
	return rc;
}

int sg_query_print_text(FILE *out, const cJSON *v)
{
	int rc;

	if (out == NULL)
		return -EINVAL;
	rc = pt_value(out, v, NULL, NULL, 0);
	/* Buffered write errors (a closed pipe, a full disk) only surface on flush. */
	errno = 0;
	if (fflush(out) != 0 && rc == 0)
		rc = errno != 0 ? -errno : -EIO;
	if (rc == 0 && ferror(out))
		rc = -EIO;
	/* Callers that report with strerror(errno) see the error we return, not whatever the
	 * flush above left behind. */
	if (rc < 0)
		errno = -rc;
	return rc;
}
