"""
Topic and node names of the stack (docs/ros.md, ``ohio_core.data.topics``).

Names without a leading slash are relative: they resolve inside a node's namespace, so a launch
file can place the stack under a namespace or remap them. At the root namespace every name
resolves to the topic ``ohio_core.data.topics`` records and reads.
"""

JOINT_STATES = '/joint_states'
EE_GOAL = 'ohio/ee_goal'
EFFORT_COMMANDS = 'effort_controller/commands'
GRIPPER = 'ohio/gripper_command'
TASK_STATE = 'ohio/task_state'
DIAGNOSTICS = '/diagnostics'
CLOCK = '/clock'

CONTROLLER_NODE = 'controller'
POLICY_NODE = 'policy'
SIM_NODE = 'mujoco_sim'
RECORDER_NODE = 'recorder'

ROUTING_STATE = 'routing/state'
ROUTING_FLOWS = 'routing/flows'
ROUTING_DISTRIBUTION = 'routing/desired_distribution'
ROUTING_STEP_INFO = 'routing/step_info'
ROUTING_TRAVEL_TIME = 'routing/travel_time'

ROUTING_SIM_NODE = 'routing_sim'
REBALANCING_NODE = 'rebalancing'
ROUTING_POLICY_NODE = 'routing_policy'
