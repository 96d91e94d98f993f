from conveyor import Conveyor

app = Conveyor("proj", include=["proj.tasks"])
app.config_from_object("celeryconfig")
