from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0010_live_photos_motion_progress"),
    ]

    operations = [
        migrations.AddField(
            model_name="clipmodel",
            name="precision",
            field=models.CharField(default="fp32", max_length=8),
        ),
    ]
