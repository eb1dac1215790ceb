"""Small built-in vocabularies for synthetic people (no external faker dependency)."""

from __future__ import annotations


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(sep) if w.strip())


FIRST_NAMES: tuple[str, ...] = _words(
    """
Sarah Emily Jessica Ashley Amanda Jennifer Elizabeth Megan Lauren Rachel Hannah Samantha Nicole
Stephanie Olivia Emma Sophia Ava Isabella Mia Abigail Madison Chloe Grace Natalie Victoria Zoe
Lily Hailey Brooke Sydney Taylor Alexis Kayla Morgan Julia Anna Allison Katherine Rebecca Laura
Michelle Amy Melissa Heather Rachael Kimberly Christina Andrea Danielle Maria Sofia Camila
Valeria Gabriela Lucia Daniela Ximena Mariana Paula Andrea Jasmine Aaliyah Imani Destiny
Diamond Aisha Priya Ananya Aditi Kavya Meera Neha Pooja Riya Shreya Divya Mei Ling Yuki Hana
Sakura Jia Min Soo Ji Eun Hye Linh Thao Ngoc Anh Fatima Layla Noor Yasmin Amira Zara Leila Sara
Maya Nora Ella Claire Audrey Stella Violet Aurora Hazel Ellie Scarlett Penelope Riley Nova Ivy
Willow Naomi Ruby Alice Eva Iris Jade Luna Piper Quinn Reese Sadie Tessa Vivian Wren Jenna
Kelsey Caitlin Erin Shannon Tara Molly Holly Paige Kendall Mackenzie Bailey Delaney Gianna
Alyssa Brianna Gabrielle Jocelyn Leah Margaret Caroline Charlotte Amelia Harper Evelyn Avery
Ella Michael James David Daniel Matthew Christopher Andrew Joshua Ryan Brandon Tyler Kevin
Jason Justin Eric Jonathan Nathan Benjamin Samuel Ethan Noah Liam Lucas Mason Logan Aiden Jacob
Carlos Diego Luis Mateo Javier Miguel Alejandro Raj Arjun Vikram Rohan Kenji Hiroshi Minho Jin
Wei Omar Ali Hassan Karim Marcus Andre Jamal Malik Darius Owen Caleb Isaac Julian Leo
"""
)

LAST_NAMES: tuple[str, ...] = _words(
    """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips
Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers
Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson
Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders
Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler
Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton
Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina
Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez McDonald Woods Washington
Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter
Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black
Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson
Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce
Vazquez Hansen Peters Santos Hart Bradley Knight Elliott Cunningham Duncan Armstrong Hudson
Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews Pena
Richards Contreras Willis Carpenter Lawrence Sandoval Guerrero George Chapman Rios Estrada
Ortega Watkins Greene Nunez Wheeler Valdez Harper Burke Larson Santiago Maldonado Morrison
Franklin Carlson Austin Dominguez Carr Lawson Jacobs Obrien Lynch Singh Vega Bishop Montgomery
Oliver Jensen Harvey Williamson Gilbert Dean Sims Espinoza Howell Li Wong Reid Hanson Le McCoy
Garrett Burton Fuller Wang Weber Welch Rojas
"""
)

EMAIL_DOMAINS: tuple[str, ...] = _words(
    "gmail.com gmail.com gmail.com gmail.com yahoo.com yahoo.com outlook.com hotmail.com "
    "icloud.com icloud.com aol.com example.com example.org example.net proton.me"
)

# city | province_code | zip prefix | phone area code | sales tax rate
_CITY_ROWS = """
New York|NY|100|212|0.08875
Brooklyn|NY|112|718|0.08875
Los Angeles|CA|900|213|0.095
San Francisco|CA|941|415|0.08625
San Diego|CA|921|619|0.0775
Chicago|IL|606|312|0.1025
Houston|TX|770|713|0.0825
Austin|TX|787|512|0.0825
Dallas|TX|752|214|0.0825
Phoenix|AZ|850|602|0.086
Philadelphia|PA|191|215|0.08
Seattle|WA|981|206|0.1035
Portland|OR|972|503|0.0
Denver|CO|802|303|0.0881
Boston|MA|021|617|0.0625
Atlanta|GA|303|404|0.089
Miami|FL|331|305|0.07
Orlando|FL|328|407|0.065
Nashville|TN|372|615|0.0925
Minneapolis|MN|554|612|0.08025
Detroit|MI|482|313|0.06
Charlotte|NC|282|704|0.0725
Columbus|OH|432|614|0.075
Salt Lake City|UT|841|801|0.0775
Las Vegas|NV|891|702|0.08375
Wilmington|DE|198|302|0.0
Manchester|NH|031|603|0.0
Washington|DC|200|202|0.06
Baltimore|MD|212|410|0.06
Raleigh|NC|276|919|0.0725
"""
CITIES: tuple[tuple[str, str, str, str, float], ...] = tuple(
    (c, p, z, a, float(r))
    for c, p, z, a, r in (row.split("|") for row in _CITY_ROWS.strip().splitlines())
)

STREETS: tuple[str, ...] = _words(
    "Main St|Oak Ave|Maple Dr|Cedar Ln|Pine St|Elm St|Washington Ave|Lake View Rd|Hillcrest Dr|"
    "Park Ave|Sunset Blvd|River Rd|Highland Ave|Church St|Willow Way|Chestnut St|Spring St|"
    "Franklin Ave|Jefferson St|Meadow Ln|Broadway|Market St|Lincoln Ave|Grove St|Forest Dr",
    "|",
)

JUNK_PHONES: tuple[str, ...] = ("0000000000", "", "+15555555555", "123-456-7890")
JUNK_EMAIL = "test@example.com"
