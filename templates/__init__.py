"""Default mail templates shipped with casebot (installed as the package `casebot._templates`).

Admins override any of them by putting a file of the same name in the folder named by `templates.dir`.
"""
