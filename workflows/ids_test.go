package workflows

import "testing"

// A workflow ID carries printable ASCII only (the SDK sends it in a gRPC
// header): an id with another byte is escaped, % included, so that it
// can start a run; an id of printable ASCII, the ids of every run so far,
// is kept as it is.
func TestWorkflowIDsEscapeWhatAHeaderCannotCarry(t *testing.T) {
	for _, c := range []struct{ account, deal, want string }{
		{"", "D-1001", "invoice/demo/D-1001"},
		{"", `deal 42 "Q3" 50%`, `invoice/demo/deal 42 "Q3" 50%`},
		{"", "Zoë-2", "invoice/demo/Zo%C3%AB-2"},
		{"", "T\t1", "invoice/demo/T%091"},
		{"", "ü%", "invoice/demo/%C3%BC%25"},
		{"62515", "Ü-1", "invoice/demo/62515/%C3%9C-1"},
		{"Zürich", "7", "invoice/demo/Z%C3%BCrich/7"},
	} {
		if got := DealWorkflowID("demo", c.account, c.deal); got != c.want {
			t.Errorf("DealWorkflowID(demo, %q, %q) = %q, want %q", c.account, c.deal, got, c.want)
		}
	}
	// Every printable ASCII byte, alone and all together, is kept.
	var all []byte
	for c := byte(0x20); c <= 0x7e; c++ {
		all = append(all, c)
		if got := WorkflowID("demo", string([]byte{'D', c})); got != "invoice/demo/D"+string(c) {
			t.Errorf("WorkflowID(demo, %q) = %q", "D"+string(c), got)
		}
	}
	if got := DealWorkflowID("demo", string(all), string(all)); got != "invoice/demo/"+string(all)+"/"+string(all) {
		t.Errorf("printable ASCII changed: %q", got)
	}
}
