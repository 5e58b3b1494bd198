package loadtest

import (
	"errors"

	"github.com/go-faster/jx"
)

// decodeBatch returns a decode function that fills ans from a batch answer
// with go-faster/jx instead of encoding/json: the answer to a batch of
// 1,000 carries 1,000 results, each with a whole transaction, of which the
// generator needs only the status and the error code, and encoding/json's
// reflection spent more CPU on that than the rest of the request.
//
// The outcome is encoding/json's for what ledgerd sends — one result per
// element of "results" (null gives a zero result), "status" an integer,
// "error" null or an object whose "code" is a string, anything else
// skipped, and what follows the first JSON value ignored — except that
// member names are matched exactly (ledgerd writes them in lower case),
// not case-insensitively, and a repeated "results" replaces the earlier
// one. A body that is not JSON, has a value of the wrong type, or has no
// "results" array is an error.
func decodeBatch(ans *batchAnswer) func([]byte) error {
	return func(b []byte) error { return ans.decode(jx.DecodeBytes(b)) }
}

var errNoResults = errors.New(`batch answer without a "results" array`)

func (a *batchAnswer) decode(d *jx.Decoder) error {
	found := false
	err := d.ObjBytes(func(d *jx.Decoder, key []byte) error {
		if string(key) != "results" {
			return d.Skip()
		}
		found = true
		a.Results = a.Results[:0]
		return d.Arr(func(d *jx.Decoder) error {
			a.Results = append(a.Results, itemResult{})
			return a.Results[len(a.Results)-1].decode(d)
		})
	})
	if err == nil && !found {
		err = errNoResults
	}
	return err
}

// decode reads one element of "results": null, or an object with the
// status and the error's code.
func (it *itemResult) decode(d *jx.Decoder) error {
	if d.Next() == jx.Null {
		return d.Null()
	}
	return d.ObjBytes(func(d *jx.Decoder, key []byte) error {
		switch string(key) {
		case "status":
			if d.Next() == jx.Null {
				return d.Null()
			}
			n, err := d.Int()
			it.Status = n
			return err
		case "error":
			if d.Next() == jx.Null {
				it.Error = nil
				return d.Null()
			}
			if it.Error == nil {
				it.Error = new(itemError)
			}
			return it.Error.decode(d)
		}
		return d.Skip()
	})
}

func (e *itemError) decode(d *jx.Decoder) error {
	return d.ObjBytes(func(d *jx.Decoder, key []byte) error {
		if string(key) != "code" {
			return d.Skip()
		}
		if d.Next() == jx.Null {
			return d.Null()
		}
		s, err := d.Str()
		e.Code = s
		return err
	})
}
