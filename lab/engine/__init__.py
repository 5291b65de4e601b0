"""Docker and Compose: the running lab, its image, helper containers, attached programs."""
