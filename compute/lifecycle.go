package compute

import (
	"github.com/trustack/trustack"
	"github.com/trustack/trustack/wire"
)

// transition is one power action a user may ask for: the VM states it may
// start from (and whether the server must be running), the task state
// while it runs, what the agent does, and the VM and power states it ends
// in.
type transition struct {
	from    []string
	running bool
	task    string
	op      wire.PowerOp
	event   string // the instance action event, as Nova names it
	vm      string // "" for the state it was in
	power   trustack.PowerState
}

// transitions are the power actions, by instance action name. An action
// asked for from any other VM state, or while another task runs, gives
// ECONFLICT and changes nothing.
var transitions = map[string]transition{
	"pause":   {from: []string{trustack.VMActive}, task: trustack.TaskPausing, op: wire.OpPause, event: "compute_pause_instance", vm: trustack.VMPaused, power: trustack.PowerPaused},
	"unpause": {from: []string{trustack.VMPaused}, task: trustack.TaskUnpausing, op: wire.OpUnpause, event: "compute_unpause_instance", vm: trustack.VMActive, power: trustack.PowerRunning},
	"suspend": {from: []string{trustack.VMActive}, task: trustack.TaskSuspending, op: wire.OpSuspend, event: "compute_suspend_instance", vm: trustack.VMSuspended, power: trustack.PowerSuspended},
	"resume":  {from: []string{trustack.VMSuspended}, task: trustack.TaskResuming, op: wire.OpResume, event: "compute_resume_instance", vm: trustack.VMActive, power: trustack.PowerRunning},
	"stop":    {from: []string{trustack.VMActive, trustack.VMError}, task: trustack.TaskPoweringOff, op: wire.OpStop, event: "compute_stop_instance", vm: trustack.VMStopped, power: trustack.PowerShutdown},
	"start":   {from: []string{trustack.VMStopped}, task: trustack.TaskPoweringOn, op: wire.OpStart, event: "compute_start_instance", vm: trustack.VMActive, power: trustack.PowerRunning},
	"reboot":  {from: []string{trustack.VMActive}, task: trustack.TaskRebooting, op: wire.OpRebootSoft, event: "compute_reboot_instance", vm: trustack.VMActive, power: trustack.PowerRunning},
	// A crash dump has no task state in Nova: it runs while the server
	// goes on as it was.
	"trigger_crash_dump": {from: []string{trustack.VMActive, trustack.VMError}, running: true, op: wire.OpCrashDump, event: "compute_trigger_crash_dump", power: trustack.PowerRunning},
	"reboot_hard":        {from: []string{trustack.VMActive, trustack.VMStopped, trustack.VMPaused, trustack.VMSuspended, trustack.VMError}, task: trustack.TaskRebootingHard, op: wire.OpRebootHard, event: "compute_reboot_instance", vm: trustack.VMActive, power: trustack.PowerRunning},
}

// snapshotFrom are the VM states a server may be snapshotted in.
var snapshotFrom = []string{trustack.VMActive, trustack.VMStopped, trustack.VMPaused, trustack.VMSuspended}

// Status is a server's status as the compute API shows it, from its VM
// and task states, as Nova derives it.
func Status(s *trustack.Server) string {
	switch s.VMState {
	case trustack.VMBuilding:
		return "BUILD"
	case trustack.VMStopped:
		return "SHUTOFF"
	case trustack.VMPaused:
		return "PAUSED"
	case trustack.VMSuspended:
		return "SUSPENDED"
	case trustack.VMError:
		return "ERROR"
	case trustack.VMDeleted:
		return "DELETED"
	case trustack.VMActive:
		switch s.TaskState {
		case trustack.TaskRebooting:
			return "REBOOT"
		case trustack.TaskRebootingHard:
			return "HARD_REBOOT"
		}
		return "ACTIVE"
	}
	return "UNKNOWN"
}

// StatusStates maps an API status to the VM states it covers, for the
// status filter of server lists.
func StatusStates(status string) []string {
	switch status {
	case "ACTIVE", "REBOOT", "HARD_REBOOT":
		return []string{trustack.VMActive}
	case "BUILD":
		return []string{trustack.VMBuilding}
	case "SHUTOFF":
		return []string{trustack.VMStopped}
	case "PAUSED":
		return []string{trustack.VMPaused}
	case "SUSPENDED":
		return []string{trustack.VMSuspended}
	case "ERROR":
		return []string{trustack.VMError}
	case "DELETED":
		return []string{trustack.VMDeleted}
	}
	return []string{"none"}
}
