"""Small MJCF scenes shared by the physics backend tests."""

BOX_AND_ARM = """
<mujoco>
  <compiler angle="radian"/>
  <option timestep="0.002"/>
  <worldbody>
    <geom name="floor" type="plane" size="5 5 .1"/>
    <body name="box" pos="0 0 0.5">
      <freejoint/>
      <geom name="box" type="box" size=".1 .1 .1" mass="1"/>
    </body>
    <body name="link" pos="1 0 1">
      <joint name="hinge" axis="0 1 0" range="-2 2" damping="0.1"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size=".03" mass="0.5"
            contype="0" conaffinity="0"/>
    </body>
  </worldbody>
  <actuator><position name="hinge" joint="hinge" kp="20" kv="1" ctrlrange="-2 2"/></actuator>
  <keyframe><key name="home" qpos="0 0 0.5 1 0 0 0 0.3" ctrl="0.3"/></keyframe>
</mujoco>
"""
