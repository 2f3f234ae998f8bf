"""The arm's nodes: controller, policy, MuJoCo simulator and recorder, with their configs."""
