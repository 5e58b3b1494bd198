package httpapi

import (
	"net/http"
	"net/url"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

// Every list answers {"data": [...], "next_cursor": "…" | null}, fetched by
// keyset: the query asks for one row more than the page, and that extra
// row says whether a next page exists.

// cursorQuery reads limit and cursor, the parameters of a list paged by
// the opaque cursor alone; on a bad one it answers 422 and ok is false.
func cursorQuery(w http.ResponseWriter, q url.Values) (limit int, after string, ok bool) {
	var v ledgerd.Validation
	limit = limitParam(q, &v)
	after, _ = cursorParam(q, &v)
	if err := v.Err(); err != nil {
		writeProblem(w, err)
		return 0, "", false
	}
	return limit, after, true
}

// page trims rows fetched with limit+1 to limit and returns the opaque
// cursor (the cursor parameter) of the page's last row, or "" when this is
// the last page.
func page[T any](rows []T, limit int, key func(T) string) ([]T, string) {
	rows, last := pageAfter(rows, limit, key)
	if last == "" {
		return rows, ""
	}
	return rows, encodeCursorValue(last)
}

// pageAfter is page for the lists that resume after an id the client
// already holds (audit entries, webhook deliveries): next_cursor is that
// id as it is, to pass back as the after parameter.
func pageAfter[T any](rows []T, limit int, id func(T) string) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, id(rows[limit-1])
}

// writeList answers 200 with the list envelope. extra, when set, adds
// members between data and next_cursor (a statement's balances).
func writeList[T any](w http.ResponseWriter, rows []T, item func(*jx.Encoder, T), next string, extra func(*jx.Encoder)) {
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) {
		e.ObjStart()
		e.FieldStart("data")
		e.ArrStart()
		for _, r := range rows {
			item(e, r)
		}
		e.ArrEnd()
		if extra != nil {
			extra(e)
		}
		encodeCursor(e, next)
		e.ObjEnd()
	})
}
